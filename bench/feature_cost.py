"""What each feature of a SCIM request costs our app, and what the ceiling's request costs.

    .venv/bin/python bench/feature_cost.py [KIND ...] [--requests 1500] [--rounds 3]
                                           [--db bench_ours]

KIND: lookup, post, patch or put (default: all four). Runs on the database a `bench/run.py` run
left, in one process per measurement, as `instructions.py --timed` does: the CPU time of each
request after a warm-up, our app called as a WSGI app (no gunicorn, no worker). Measured, for
each kind, the app as deployed, then without one feature at a time:

- ``ratelimit``: the Redis round trip that takes a rate-limit token and reads the credentials'
  generation (the immediate revocation check);
- ``audit``: the audit row (recorded, then written by the flush thread);
- ``log``: the JSON request log line;
- ``metrics``: the Prometheus counters (in multiprocess mode, as under gunicorn:
  ``instructions.environment``);
- ``publish``: the follow-up jobs' publishing to the broker after commit (writes only);

then without all of them, and the ceiling (bench/peers/ceiling_app.py, in this interpreter) on
a copy of the same users in a database of its own, sent the same requests. The measurements
alternate, round after round (the host's speed drifts by 20 % over minutes); each line gives
the median over the rounds, their range, and the median change from the same round's app as
deployed, with the range of that change over the rounds (a feature's own cost is a few
percent of a request, the host's noise up to 20 %: trust a change only where its range stays
on one side of zero). What remains with every feature off, against the ceiling, is the SCIM
work itself (parsing, validation, the SQL a resource needs, rendering) and the framework code
our app has and the ceiling does not (SQLAlchemy, marshmallow).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FEATURES = ("ratelimit", "audit", "log", "metrics", "publish")
KINDS = ("lookup", "post", "patch", "put")
CEILING_DB = "bench_feature_cost_ceiling"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def configurations(kind: str) -> list[str]:
    features = [f for f in FEATURES if f != "publish" or kind != "lookup"]
    return ["deployed", *(f"-{f}" for f in features), "-all", "ceiling"]


def _without(app: Any, off: set[str]) -> None:
    """Turn ``off``'s features off in ``app`` (a measurement, never the deployment)."""
    from web.ratelimit import Admission
    from web.scim import auth, views

    hooks = {"audit": "_audit", "metrics": "_observe"}
    gone = {hooks[f] for f in off if f in hooks}
    app.after_request_funcs[None] = [h for h in app.after_request_funcs[None]
                                     if h.__name__ not in gone]
    if "ratelimit" in off:  # admitted, with the generation the cached credentials were read at
        auth._admit = lambda org: Admission(True, 0.0, org.generation)  # type: ignore[assignment]
    if "log" in off:
        import logging

        logging.getLogger("workteam.request").disabled = True
    if "publish" in off:
        views._publish = lambda job_ids, kinds: None  # type: ignore[assignment]


def child_ours(kind: str, count: int, off: set[str]) -> None:
    import instructions

    import web

    factory = web.create_app

    def create_app() -> Any:
        app = factory()
        _without(app, off)
        return app

    web.create_app = create_app  # instructions.child imports it from web at call time
    instructions.child(kind, count, os.environ["BENCH_TOKEN"], os.environ["BENCH_ORG"],
                       timed=True)


def child_ceiling(kind: str, count: int) -> None:
    """The ceiling's app, sent what instructions.child sends ours (the same users, seed)."""
    sys.path.insert(0, str(BENCH / "peers"))
    import ceiling_app
    import instructions

    stored, users = instructions.stored_users(os.environ["BENCH_SOURCE_URL"])
    feed = instructions.requests(kind, "", users, stored)
    cpu_us = instructions.send(ceiling_app.app, feed, count, os.environ["BENCH_TOKEN"])
    print(f"cpu_us {cpu_us:.0f}")


def drop_ceiling_database() -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {CEILING_DB}")


def ceiling_database(source_url: str) -> str:
    """A fresh database with the ceiling's schema and the source's users (same ids)."""
    import psycopg

    drop_ceiling_database()
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {CEILING_DB}")
    url = f"postgresql://postgres@127.0.0.1:5432/{CEILING_DB}"
    schema = (BENCH / "peers" / "ceiling_schema.sql").read_text()
    with psycopg.connect(source_url) as src, psycopg.connect(url) as dst:
        dst.execute(schema)
        rows = src.execute("SELECT id, user_name, active, attrs FROM users").fetchall()
        with dst.cursor().copy(
                "COPY users (id, org, user_name, active, data) FROM STDIN") as copy:
            for uid, name, active, attrs in rows:
                copy.write_row((uid, 1, name, active, psycopg.types.json.Jsonb(attrs)))
        dst.execute("ANALYZE users")
    return url


def measure(kind: str, config: str, count: int, env: dict[str, str]) -> int:
    argv = [sys.executable, __file__, kind, f"--child={config}", "--requests", str(count)]
    out = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("cpu_us "):
            return int(line.split()[1])
    raise SystemExit(f"{kind} {config}: no figure\n{out.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kinds", nargs="*", choices=KINDS, default=list(KINDS))
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", default="bench_ours")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    sys.path.insert(0, str(REPO))
    if args.child:
        if args.child == "ceiling":
            child_ceiling(args.kinds[0], args.requests)
        else:
            off = set(FEATURES) if args.child == "-all" else {args.child.lstrip("-")}
            child_ours(args.kinds[0], args.requests, off - {"deployed"})
        return

    import instructions

    env = instructions.environment(args.db)
    org, token = instructions.organization_and_token(env)
    env = {**env, "BENCH_TOKEN": token, "BENCH_ORG": org,
           "BENCH_SOURCE_URL": env["DATABASE_URL"], "BENCH_POOL_SIZE": "1"}
    print(f"{args.requests} requests per measurement after {instructions.WARM_UP} to warm up, "
          f"median of {args.rounds} rounds, µs of CPU per request (one process)")
    try:
        env["BENCH_DATABASE_URL"] = ceiling_database(env["DATABASE_URL"])
        for kind in args.kinds:
            compare(kind, args.rounds, args.requests, env)
    finally:
        drop_ceiling_database()


def compare(kind: str, rounds: int, count: int, env: dict[str, str]) -> None:
    """Measure every configuration of ``kind``, round after round; print the medians."""
    configs = configurations(kind)
    figures: dict[str, list[int]] = {c: [] for c in configs}
    for _ in range(rounds):
        for config in configs:
            figures[config].append(measure(kind, config, count, env))
    print(f"\n{kind}:")
    for config in configs:
        got = figures[config]
        # Against the same round's "deployed": the host's drift between rounds cancels.
        changes = [g / d - 1 for g, d in zip(got, figures["deployed"], strict=True)]
        print(f"  {config:<10} {statistics.median(got):6.0f} µs ({min(got)}-{max(got)})  "
              f"{statistics.median(changes):+4.0%} ({min(changes):+.0%} to "
              f"{max(changes):+.0%})")


if __name__ == "__main__":
    main()
