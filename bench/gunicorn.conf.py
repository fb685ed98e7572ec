"""The one gunicorn configuration every server in the benchmark runs under.

Ours, the ceiling and django-scim2 all start with ``gunicorn -c bench/gunicorn.conf.py``;
only the bind address and the application differ. bench/README.md explains the choice.
The BENCH_GUNICORN_* variables exist to compare settings by hand; run.py never sets them,
so a recorded run always uses the defaults below.
"""

import os

workers = int(os.environ.get("BENCH_GUNICORN_WORKERS", "4"))
worker_class = os.environ.get("BENCH_GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("BENCH_GUNICORN_THREADS", "4"))
keepalive = 5
# At most 8 client connections per worker (bench/README.md: a phase once gave one worker all 16).
worker_connections = int(os.environ.get("BENCH_GUNICORN_WORKER_CONNECTIONS", "8"))
backlog = 2048
timeout = 120
graceful_timeout = 10
accesslog = None
errorlog = "-"
loglevel = "warning"
preload_app = False
