"""JSON log lines with request id and organization; never a token, password or body."""

from __future__ import annotations

import logging
import sys
import time
import uuid

from flask import Flask, g, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-Id"


class _ContextFilter(logging.Filter):
    """Adds request id and organization of the current request, if any, to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from flask import has_request_context

        if has_request_context():
            record.request_id = getattr(g, "request_id", None)
            record.org_id = str(g.org_id) if getattr(g, "org_id", None) else None
        return True


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_workteam", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=False)
    )
    handler.addFilter(_ContextFilter())
    handler._workteam = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


log = logging.getLogger("workteam.request")


def init_app(app: Flask) -> None:
    configure_logging()

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        # Accept a caller's id only if it is short and plain; otherwise make one.
        ok = 0 < len(incoming) <= 64 and incoming.replace("-", "").isalnum()
        g.request_id = incoming if ok else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):  # type: ignore[no-untyped-def]
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        duration_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        g.duration_ms = duration_ms
        log.info(
            "request",
            extra={
                "method": request.method,
                "route": request.url_rule.rule if request.url_rule else None,
                "status": response.status_code,
                "duration_ms": round(duration_ms, 2),
            },
        )
        return response
