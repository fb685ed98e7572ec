"""One audit row per SCIM request: organization, token prefix, method, path, status, resource
id, request id, duration. Never a token, password or body.

Rows are buffered per process and written by a background thread in one COPY every
``WORKTEAM_AUDIT_FLUSH_SECONDS`` (default 0.5 s), with the tokens' ``last_used``: an audit row
per request then costs no database round trip on the request's path. The price: a process that
dies without exiting (SIGKILL, power loss) loses at most that interval's rows; a normal exit
flushes (atexit). ``0`` writes each row synchronously after the response is built.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from models.audit import append_events
from models.db import utcnow
from models.tokens import touch
from web.database import release

log = logging.getLogger("workteam.audit")


class AuditWriter:
    """A per-process buffer of audit rows and token uses, flushed in batches."""

    def __init__(self, sessions: sessionmaker, interval: float) -> None:
        self.sessions = sessions
        self.interval = interval
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._token_uses: dict[uuid.UUID, dt.datetime | None] = {}
        self._pid: int | None = None
        self._wake = threading.Event()

    def record(self, row: dict[str, Any], token_use: tuple | None) -> None:
        with self._lock:
            self._rows.append(row)
            if token_use is not None:
                self._token_uses.setdefault(token_use[0], token_use[1])
        if self.interval <= 0:
            self.flush()
        else:
            self._ensure_thread()

    def flush(self) -> int:
        """Write what is buffered; return the number of rows written."""
        with self._lock:
            rows, self._rows = self._rows, []
            uses, self._token_uses = self._token_uses, {}
        if not rows and not uses:
            return 0
        try:
            with self.sessions() as session:
                # Losing the last audit rows in a crash is acceptable; an fsync per batch is not.
                session.execute(text("SET LOCAL synchronous_commit = off"))
                if rows:
                    append_events(session, rows)
                for token_id, last_used in uses.items():
                    touch(session, token_id, last_used)
                session.commit()
        except Exception:  # auditing must never take the service down; say so loudly
            log.warning("audit write failed; %d row(s) lost", len(rows), exc_info=True)
            return 0
        return len(rows)

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()  # a forked worker starts its own thread
            threading.Thread(target=self._run, name="audit-writer", daemon=True).start()
            atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            self.flush()


def init_app(app: Flask) -> None:
    writer = AuditWriter(app.extensions["db.sessions"], app.config["AUDIT_FLUSH_SECONDS"])
    app.extensions["audit"] = writer

    @app.after_request
    def _audit(response: Response) -> Response:
        # Behind the proxies once: each proxy access costs ~1-2 µs.
        req, ctx = request._get_current_object(), g._get_current_object()  # type: ignore[attr-defined]
        if not req.path.startswith("/scim/") or ctx.get("org_id") is None:
            return response
        started = ctx.get("started", time.perf_counter())
        # The request's work is done: give its connection back before a synchronous flush
        # takes another (two per request could starve the pool under threaded servers).
        release(ctx)
        writer.record(
            {
                "org_id": ctx.org_id,
                "token_prefix": ctx.get("token_prefix"),
                "method": req.method,
                "path": req.path[:1000],
                "status": response.status_code,
                "resource_id": ctx.get("resource_id"),
                "request_id": ctx.get("request_id"),
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "created": utcnow(),
            },
            ctx.get("token_use"),
        )
        return response
