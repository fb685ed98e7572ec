"""The one gunicorn configuration every server in the benchmark runs under: the deployment's.

Ours, the ceiling and django-scim2 all start with ``gunicorn -c bench/gunicorn.conf.py``; only
the bind address and the application differ. Every setting is read from the repository's
gunicorn.conf.py, the file the Procfile, docker-compose and the Dockerfile deploy with, so ours
runs here as it is deployed and the peers run under the same settings. Only gunicorn's own log
level is quieter. bench/README.md explains the choices. The BENCH_GUNICORN_* variables exist
to compare settings by hand; run.py never sets them, so a recorded run always uses the
deployment's.
"""

import os
import runpy
from pathlib import Path

_deployed = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
globals().update({k: v for k, v in _deployed.items() if not k.startswith("_")})

workers = int(os.environ.get("BENCH_GUNICORN_WORKERS") or _deployed["workers"])
worker_class = os.environ.get("BENCH_GUNICORN_WORKER_CLASS") or _deployed["worker_class"]
threads = int(os.environ.get("BENCH_GUNICORN_THREADS") or _deployed["threads"])
worker_connections = int(os.environ.get("BENCH_GUNICORN_WORKER_CONNECTIONS")
                         or _deployed["worker_connections"])
loglevel = "warning"
