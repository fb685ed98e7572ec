"""Audit retention at scale: seconds for tasks.audit.prune to delete N expired audit rows while
M recent ones stay, and how long each of its transactions took.

    .venv/bin/python bench/bench_audit_prune.py [--expired 1000000] [--recent 100000]

Makes its own database (workteam_bench_audit, dropped afterwards), one organization, N rows
aged 100-200 days then M rows of the last day (in that order, as requests append them),
`VACUUM ANALYZE`, then runs the task in this process (no broker) with the default retention
of 90 days, as many runs as it takes (a run stops after a minute). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.scratch_app import app_on, new_org, own_database, timed_calls  # noqa: E402

SEED = (
    "INSERT INTO audit_events (org_id, method, path, status, duration_ms, created) "
    "SELECT %s, 'GET', '/scim/v2/x/Users', 200, 1.0, now() - make_interval(secs => %s - n * %s) "
    "FROM generate_series(1, %s::int) n"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--recent", type=int, default=100_000)
    args = parser.parse_args()
    with own_database("workteam_bench_audit") as url:
        run(url, args.expired, args.recent)


def run(url: str, expired: int, recent: int) -> None:
    from tasks import audit

    day = 86_400.0
    with psycopg.connect(url, autocommit=True) as conn:
        org = new_org(conn, 10)
        conn.execute(SEED, (org, 200 * day, 100 * day / expired, expired))  # 200 -> 100 days
        conn.execute(SEED, (org, day, day / max(recent, 1), recent))  # the last day
        conn.execute("VACUUM ANALYZE audit_events")
    app = app_on(url, "redis://127.0.0.1:6379/13")
    deleted, runs, started = 0, 0, time.perf_counter()
    with app.app_context(), timed_calls(audit.audit, "prune") as batches:  # the task's reference
        while True:
            runs += 1
            done = audit.prune()
            deleted += done
            if not done:
                break
    seconds = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        left = conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    batches.sort()
    print(json.dumps({
        "expired": expired, "recent": recent, "deleted": deleted, "left": left,
        "seconds": round(seconds, 2), "rows_per_s": round(deleted / seconds),
        "task_runs": runs, "batches": len(batches),
        "batch_p50_ms": round(batches[len(batches) // 2] * 1000, 1),
        "batch_max_ms": round(batches[-1] * 1000, 1),
    }))


if __name__ == "__main__":
    main()
