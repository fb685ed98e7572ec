"""Where a request's CPU goes: our app's own code, against gunicorn and the rest of the process.

    .venv/bin/python bench/app_cpu.py [--users 3000] [--clients 16] [--seconds 8]

Starts our service as run.py does (servers.Ours), but gunicorn serves ``app_cpu:wrapped``: the
app inside a wrapper that adds up the CPU of the request thread around each WSGI call
(``time.thread_time``) and writes the sums to a file per process every 100 requests. W1
creates the users, then W2 (lookups) and W3 (PUT) run, each with ``--clients`` clients; for
each, the web processes' CPU per request (servers.CpuMeter) is printed beside the app's own
(the difference is gunicorn's parsing, polling and writing, and the other threads).
README's Benchmarks section quotes a run at 1 and at 16 clients.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

STATS_DIR = Path(tempfile.gettempdir()) / "workteam-app-cpu"
_lock = threading.Lock()
_stats = {"requests": 0, "cpu_s": 0.0}
_app: Any = None


def wrapped(environ: dict, start_response: Any) -> list[bytes]:
    """Our app, its request thread's CPU counted (SCIM requests only)."""
    global _app
    if _app is None:
        from web import create_app

        _app = create_app()
    began = time.thread_time()
    body = _app(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    used = time.thread_time() - began
    if environ.get("PATH_INFO", "").startswith("/scim/"):
        with _lock:
            _stats["requests"] += 1
            _stats["cpu_s"] += used
            if _stats["requests"] % 100 == 0:
                (STATS_DIR / f"{os.getpid()}.json").write_text(json.dumps(_stats))
    return [data]


def _in_app() -> tuple[int, float]:
    requests, cpu = 0, 0.0
    for path in glob.glob(str(STATS_DIR / "*.json")):
        stats = json.loads(Path(path).read_text())
        requests += stats["requests"]
        cpu += stats["cpu_s"]
    return requests, cpu


def main() -> None:
    import servers
    import workloads as wl

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    wl.CONCURRENCY = args.clients
    STATS_DIR.mkdir(exist_ok=True)
    for path in glob.glob(str(STATS_DIR / "*.json")):
        os.remove(path)
    raw = Path(tempfile.mkdtemp(prefix="app-cpu-"))
    server = servers.Ours(raw)
    spawn = server.spawn

    def spawn_wrapped(argv: list[str], tag: str, env: dict | None = None,
                      cwd: Path | None = None) -> Any:
        if tag == "web":
            argv = ["app_cpu:wrapped" if a == "web:create_app()" else a for a in argv]
            env = {**(env or {}), "PYTHONPATH": f"{servers.BENCH}:{servers.REPO}"}
        return spawn(argv, tag, env=env, cwd=cwd)

    server.spawn = spawn_wrapped  # type: ignore[method-assign]
    sizes = wl.Sizes(w1_users=args.users, w2_sizes=[args.users], w2_seconds=args.seconds,
                     w3_seconds=args.seconds, w5_members=0, w6_users=0, phase_max_seconds=600,
                     seed_http_max_seconds=0, w6_settle_max_seconds=0, w7_max_seconds=0)

    # The web processes (gunicorn's master and workers): the group run.py's CPU table reads.
    meter = servers.CpuMeter(server)

    def web_cpu() -> float:
        return servers.CpuMeter.total(meter.snapshot(), "web")

    try:
        servers.ensure_free(server.port, "ours")
        server.start()
        wl.warm_up(server)
        state = wl.State()

        def w1() -> Any:
            result = wl.w1_create(server, state, 0, args.users, sizes)
            server.settle(120)  # the worker's CPU is not the web processes'
            return result

        phases = [("W1 (lookup + create)", w1),
                  ("W2 lookup", lambda: wl.w2_lookups(server, state, args.users, sizes, 1)),
                  ("W3 PUT", lambda: wl.w3_put(server, state, sizes, 3))]
        for name, run in phases:
            time.sleep(0.5)
            cpu0, (n0, app0) = web_cpu(), _in_app()
            result = run()
            time.sleep(0.5)
            cpu1, (n1, app1) = web_cpu(), _in_app()
            print(f"{name}, {args.clients} clients: {result.req_per_s:.0f} req/s; web "
                  f"processes {(cpu1 - cpu0) / result.requests * 1000:.2f} ms of CPU per "
                  f"request, inside the app {(app1 - app0) / max(n1 - n0, 1) * 1000:.2f} "
                  f"(over {n1 - n0} requests)", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
