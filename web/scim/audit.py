"""One audit row per SCIM request: organization, token prefix, method, path, status, resource
id, duration. Written after the response is built, in its own short transaction, so a failed
request is audited too. Never a token, password or body."""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app, g, request
from sqlalchemy import text

from models.audit import AuditEvent
from models.tokens import touch

log = logging.getLogger("workteam.audit")


def init_app(app: Flask) -> None:
    @app.after_request
    def _audit(response):  # type: ignore[no-untyped-def]
        if not request.path.startswith("/scim/") or g.get("org_id") is None:
            return response
        started = g.get("started", time.perf_counter())
        event = AuditEvent(
            org_id=g.org_id,
            token_prefix=g.get("token_prefix"),
            method=request.method,
            path=request.path[:1000],
            status=response.status_code,
            resource_id=g.get("resource_id"),
            request_id=g.get("request_id"),
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        # Give the request's connection back first: holding two per request could starve the
        # pool under threaded servers.
        request_session = g.pop("db_session", None)
        if request_session is not None:
            request_session.close()
        try:
            with current_app.extensions["db.sessions"]() as audit_session:
                # Losing the last audit rows in a crash is acceptable; an fsync per read is not.
                audit_session.execute(text("SET LOCAL synchronous_commit = off"))
                audit_session.add(event)
                if g.get("token_use") is not None:
                    touch(audit_session, *g.token_use)
                audit_session.commit()
        except Exception:  # auditing must never turn a served request into an error
            log.warning("audit write failed", exc_info=True)
        return response
