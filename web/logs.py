"""JSON log lines with request id and organization; never a token, password or body."""

from __future__ import annotations

import contextvars
import logging
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from flask import Flask, Response, g, request
from pythonjsonlogger.orjson import OrjsonFormatter

REQUEST_ID_HEADER = "X-Request-Id"


# The Celery task being run by this worker process (task id, name, job id), if any.
_task: contextvars.ContextVar[dict | None] = contextvars.ContextVar("workteam_task", default=None)


class _ContextFilter(logging.Filter):
    """Adds request id and organization of the current request, or task id, task name and job
    id of the current Celery task, to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from flask import has_request_context

        if has_request_context():
            ctx = g._get_current_object()
            record.request_id = getattr(ctx, "request_id", None)
            org_id = getattr(ctx, "org_id", None)
            record.org_id = str(org_id) if org_id else None
        task = _task.get()
        if task:
            for key, value in task.items():
                setattr(record, key, value)
        return True


def init_celery_logging() -> None:
    """Celery worker and beat log through the same JSON handler (Celery's own logging setup is
    skipped), each line of a task with its task id, task name and job id. Tasks take the
    outbox job id as their first argument (tasks/outbox.py); other arguments are not logged."""
    from celery import signals

    def _setup(loglevel: object = None, **_: object) -> None:
        # Celery's --loglevel (a name or a number) is honoured; INFO when none was given.
        level = logging.getLevelName(loglevel) if isinstance(loglevel, str) else loglevel
        configure_logging(level if isinstance(level, int) else logging.INFO)

    def _prerun(task_id: str | None = None, task: object = None,
                args: Sequence[Any] | None = None, **_: object) -> None:
        job_id = args[0] if args and isinstance(args[0], int) else None
        _task.set({"task_id": task_id, "task": getattr(task, "name", None), "job_id": job_id})

    def _postrun(**_: object) -> None:
        _task.set(None)

    # weak=False: the receivers are local functions; dispatch_uid: once per process.
    signals.setup_logging.connect(_setup, weak=False, dispatch_uid="workteam.logs.setup")
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid="workteam.logs.prerun")
    signals.task_postrun.connect(_postrun, weak=False, dispatch_uid="workteam.logs.postrun")


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_workteam", False) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    # orjson: the request line is written once per request (the stdlib encoder was a third
    # of its cost).
    handler.setFormatter(
        OrjsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=False)
    )
    handler.addFilter(_ContextFilter())
    handler._workteam = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


log = logging.getLogger("workteam.request")


def init_app(app: Flask) -> None:
    configure_logging()
    init_celery_logging()  # harmless in web processes: these signals fire only in Celery

    @app.before_request
    def _start() -> None:
        ctx = g._get_current_object()  # once: a proxy access costs ~1-2 µs
        ctx.started = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        # Accept a caller's id only if it is short and plain; otherwise make one.
        ok = 0 < len(incoming) <= 64 and incoming.replace("-", "").isalnum()
        ctx.request_id = incoming if ok else uuid.uuid4().hex

    @app.after_request
    def _finish(response: Response) -> Response:
        req, ctx = request._get_current_object(), g._get_current_object()  # type: ignore[attr-defined]
        response.headers[REQUEST_ID_HEADER] = ctx.get("request_id", "")
        duration_ms = (time.perf_counter() - ctx.get("started", time.perf_counter())) * 1000
        environ = req.environ
        log.info(
            "request",
            extra={
                "method": req.method,
                "route": req.url_rule.rule if req.url_rule else None,
                "status": response.status_code,
                "duration_ms": round(duration_ms, 2),
                # What gunicorn's access line gave (it is off: gunicorn.conf.py): which IdP
                # called, from where (the proxy's address behind one).
                "remote_addr": environ.get("REMOTE_ADDR"),
                "user_agent": environ.get("HTTP_USER_AGENT", "")[:200] or None,
            },
        )
        return response
