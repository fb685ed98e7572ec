"""Instructions per SCIM request, counted by valgrind's callgrind: a measure of a code change
that the host's timing noise (20 % between minutes here) does not blur.

    .venv/bin/python bench/instructions.py KIND [--requests 300] [--db bench_ours] [--timed]

KIND: lookup, page, patch, post or put.

Runs on the database a `bench/run.py` run left (its first organization, a new SCIM token).
The app is called as a WSGI app in one process, twice under callgrind: once with only the
warm-up requests and once with ``--requests`` more; the difference divided by their number is
what one request costs (the request log included). The same code measured twice differs by
about 1 % for a lookup or a page, by up to 10 % for a write (probably the outbox's publishing
thread, which works partly inside the counted window). Needs valgrind (Debian's package); a
run takes a few minutes.

``--timed``: the CPU time one request takes instead (``time.process_time`` over the requests
after the warm-up, in one process, no valgrind). Closer to what a change saves under load than
instructions: a change that spares objects and calls also spares the cache misses they cost
(building the ``User`` a PUT read and setting the written row back on it took 29 + 22 µs in a
loop; sparing both saved 150 µs per PUT). Noisy by a few percent: compare alternated runs.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from servers import SMTP_SINK_PORT

REPO = Path(__file__).resolve().parent.parent
WARM_UP = 50
KINDS = ("lookup", "page", "patch", "post", "put")


def environment(db: str) -> dict[str, str]:
    """The app's settings for a measurement on ``db``; the Prometheus counters in multiprocess
    mode, as gunicorn.conf.py sets them up (a directory emptied of the last measurement's)."""
    metrics = Path(tempfile.gettempdir()) / "workteam-bench-in-process-metrics"
    metrics.mkdir(exist_ok=True)
    for stale in metrics.glob("*.db"):
        stale.unlink()
    return {**os.environ, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{db}",
            "REDIS_URL": "redis://127.0.0.1:6379/14", "SECRET_KEY": "instructions-" + "x" * 32,
            "PUBLIC_URL": "http://127.0.0.1:18104", "SMTP_URL": f"smtp://127.0.0.1:{SMTP_SINK_PORT}",
            "WORKTEAM_RATE_LIMIT": "1000000", "PROMETHEUS_MULTIPROC_DIR": str(metrics)}


def requests(kind: str, base: str, users: list[tuple[str, str]],  # type: ignore[no-untyped-def]
             stored: dict[str, dict] | None = None):
    """(method, path, query, body) of the requests of ``kind``, endlessly (``stored``: each
    user's attributes, for ``put``)."""
    rng = random.Random(7)
    for n in itertools.count():
        uid, name = rng.choice(users)
        if kind == "lookup":
            yield "GET", f"{base}/Users", "filter=" + quote(f'userName eq "{name}"'), None
        elif kind == "page":  # an import's walk over the first 10,000 users
            yield "GET", f"{base}/Users", f"startIndex={n % 100 * 100 + 1}&count=100", None
        elif kind == "patch":  # Entra's deactivate / reactivate
            op = {"op": "Replace", "path": "active", "value": "False" if n % 2 else "True"}
            yield "PATCH", f"{base}/Users/{uid}", "", {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]}
        elif kind == "put":  # W3's PUT: the user as created, a new givenName, active
            attrs = stored[uid]
            yield "PUT", f"{base}/Users/{uid}", "", {
                **attrs, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "name": {**attrs.get("name", {}), "givenName": f"G{os.getpid()}-{n}"},
                "active": True}
        else:
            user = f"ins{os.getpid()}-{n}@bench.example"
            yield "POST", f"{base}/Users", "", {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user,
                "name": {"givenName": "Given", "familyName": f"Family{n}"},
                "emails": [{"value": user, "type": "work", "primary": True}], "active": True}


def child(kind: str, count: int, token: str, org: str, timed: bool = False) -> None:
    from web import create_app

    app = create_app()
    stored, users = stored_users(os.environ["DATABASE_URL"])
    cpu_us = send(app, requests(kind, f"/scim/v2/{org}", users, stored), count, token)
    if timed:
        print(f"cpu_us {cpu_us:.0f}")


def stored_users(url: str) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """The first 20,000 users of ``url``'s database: their attributes by id, and (id,
    userName) pairs, as ``requests`` takes them."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, user_name, attrs FROM users ORDER BY seq LIMIT 20000")
        stored = {str(i): attrs for i, _, attrs in rows}
    return stored, [(uid, attrs["userName"]) for uid, attrs in stored.items()]


def send(app: Any, feed: Iterator[tuple[str, str, str, dict | None]], count: int,
         token: str) -> float:
    """Call the WSGI ``app`` with ``WARM_UP`` + ``count`` requests of ``feed``; the CPU time
    of the process per request after the warm-up, in µs. Our app's audit rows are written
    at both ends of the measured requests (by its flush thread, twice a second, in between),
    so the window holds exactly their writes."""
    writer = getattr(app, "extensions", {}).get("audit")
    flush = writer.flush if writer is not None else (lambda: 0)
    status: list[str] = []

    def start_response(line: str, _headers: object, _exc: object = None) -> None:
        status.append(line)

    started = 0.0
    for n, (method, path, query, body) in enumerate(itertools.islice(feed, WARM_UP + count)):
        if n == WARM_UP:
            flush()
            started = time.process_time()
        data = json.dumps(body).encode() if body is not None else b""
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "18104", "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:18104", "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data), "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": True,
            "wsgi.run_once": False, "HTTP_AUTHORIZATION": f"Bearer {token}",
            "CONTENT_TYPE": "application/scim+json", "CONTENT_LENGTH": str(len(data)),
        }
        status.clear()
        b"".join(app(environ, start_response))
        if status[0][:3] not in ("200", "201", "204"):
            raise SystemExit(f"{method} {path}: {status[0]}")
    flush()
    return (time.process_time() - started) / count * 1e6 if count else 0.0


def organization_and_token(env: dict[str, str]) -> tuple[str, str]:
    """The first organization of ``env``'s database and a new SCIM token of it (the CLI's)."""
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        org = str(conn.execute(
            "SELECT id FROM organizations ORDER BY created LIMIT 1").fetchone()[0])
    cli = subprocess.run([str(REPO / ".venv" / "bin" / "flask"), "--app", "web", "scim",
                          "token", org], env=env, cwd=REPO, capture_output=True, text=True,
                         check=True)
    return org, json.loads(cli.stdout.strip().splitlines()[-1])["token"]


def counted(kind: str, count: int, env: dict[str, str]) -> int:
    """Instructions of a child process that sends ``count`` requests after the warm-up."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, kind, "--child", "--requests", str(count)],
        env=env, cwd=REPO, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--db", default="bench_ours")
    parser.add_argument("--timed", action="store_true",
                        help="CPU time per request in one process, not instructions")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.kind, args.requests, os.environ["BENCH_TOKEN"], os.environ["BENCH_ORG"],
              args.timed)
        return
    env = environment(args.db)
    org, token = organization_and_token(env)
    env = {**env, "BENCH_TOKEN": token, "BENCH_ORG": org}
    if args.timed:
        out = subprocess.run([sys.executable, __file__, args.kind, "--child", "--timed",
                              "--requests", str(args.requests)], env=env, cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
        cpu = re.search(r"cpu_us (\d+)", out)
        print(f"{args.kind}: {cpu.group(1) if cpu else '?'} µs of CPU per request "
              f"({args.requests} requests after {WARM_UP} to warm up, one process)")
        return
    base, more = counted(args.kind, 0, env), counted(args.kind, args.requests, env)
    print(f"{args.kind}: {(more - base) // args.requests:,} instructions per request "
          f"({args.requests} requests after {WARM_UP} to warm up)")


if __name__ == "__main__":
    main()
