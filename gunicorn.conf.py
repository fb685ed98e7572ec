"""Gunicorn settings of the web process, as deployed and as benchmarked.

The Procfile, docker-compose.yml and the Dockerfile start ``gunicorn -c gunicorn.conf.py
"web:create_app()"``; bench/gunicorn.conf.py runs every server of the benchmark under these same
settings, so its figures are the deployment's (bench/README.md gives the measurements behind
them). Environment: ``WEB_BIND`` (default 127.0.0.1:$PORT, PORT 5000), ``WEB_CONCURRENCY``
(processes, default 2 per core), ``WEB_THREADS`` (4 per process), ``WEB_WORKER_CONNECTIONS``
(8 per process).
"""

import os
from pathlib import Path

bind = os.environ.get("WEB_BIND") or f"127.0.0.1:{os.environ.get('PORT', '5000')}"
# Requests wait on PostgreSQL and Redis, so 2 processes per core keep the cores busy; threads
# overlap the waits, and gthread keeps an IdP's connections alive (sync workers close each one).
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
# gunicorn gives a new connection to whichever process accepts first; a cap keeps one process
# from holding every kept-alive connection while the others idle (bench/README.md). More wait
# in the backlog, none is refused.
worker_connections = int(os.environ.get("WEB_WORKER_CONNECTIONS", "8"))
keepalive = 5
backlog = 2048
timeout = 30
graceful_timeout = 10
# Every request is logged by the app as one JSON line (web/logs.py: method, route, status,
# duration, request id, organization); gunicorn's access line would say it again.
accesslog = None
errorlog = "-"
loglevel = "info"


def on_starting(server) -> None:  # type: ignore[no-untyped-def]
    """Prometheus multiprocess mode: each worker writes its counters under one directory and
    /metrics adds them up (web/metrics.py). Set here, before any worker starts, and emptied of
    the last run's counters (their files only). PROMETHEUS_MULTIPROC_DIR chooses the directory;
    by default one per bound port under /tmp."""
    port = str(server.cfg.bind[0]).rsplit(":", 1)[-1]
    directory = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                                           f"/tmp/workteam-metrics-{port}"))  # noqa: S108
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
