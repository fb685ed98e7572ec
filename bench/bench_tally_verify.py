"""The tally check at scale: seconds for tasks.tallies.verify to recount an organization of N
users (a third licensed, a third waiting) and correct its tally, and to recount it again.

    .venv/bin/python bench/bench_tally_verify.py [--users 1000000] [--orgs 100]

Makes its own database (workteam_bench_tallies, dropped afterwards): one organization of N
users, and M-1 small ones of 100 users each, inserted with SQL (the triggers tally them); the
large one's tally then drifts by a row added by hand. `VACUUM ANALYZE` (as autovacuum would
have), then the task runs twice in this process (no broker). Prints one JSON line: the seconds
of each run and the recount of the large organization (median of its runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.scratch_app import app_on, new_org, own_database, timed_calls  # noqa: E402

USERS = """
    INSERT INTO users (id, org_id, user_name, attrs, emails_lower, active, version, created,
                       last_modified, manager_state, license_state)
    SELECT gen_random_uuid(), %(org)s, 'u' || n || '@example.com',
           jsonb_build_object('userName', 'u' || n || '@example.com', 'title', 'Engineer'),
           ARRAY['u' || n || '@example.com'], true, 1, now(), now(), 'none',
           (ARRAY['licensed', 'unlicensed', 'none'])[n %% 3 + 1]
    FROM generate_series(%(first)s::int, %(last)s::int) n
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=100)
    args = parser.parse_args()
    with own_database("workteam_bench_tallies") as url:
        run(url, args.users, args.orgs)


def run(url: str, users: int, orgs: int) -> None:
    from models import tallies as tally_rows
    from tasks import tallies

    with psycopg.connect(url, autocommit=True) as conn:
        large = new_org(conn, users)
        for first in range(1, users + 1, 100_000):
            conn.execute(USERS, {"org": large, "first": first,
                                 "last": min(first + 99_999, users)})
        for _ in range(orgs - 1):
            conn.execute(USERS, {"org": new_org(conn, 100), "first": 1, "last": 100})
        conn.execute("INSERT INTO user_tallies (org_id, users, changes, licensed, waiting) "
                     "VALUES (%s, 7, 0, 5, -2)", (large,))
        conn.execute("VACUUM ANALYZE")
    app = app_on(url, "redis://127.0.0.1:6379/13")
    runs = []
    with app.app_context(), timed_calls(tally_rows, "recount") as recounts:
        for _ in range(2):
            started = time.perf_counter()
            corrected = tallies.verify()
            runs.append({"corrected": corrected,
                         "seconds": round(time.perf_counter() - started, 3)})
    # The large organization is recounted first in neither run necessarily: its recounts are
    # the two longest of all.
    longest = sorted(recounts)[-2:]
    print(json.dumps({"users": users, "orgs": orgs, "runs": runs,
                      "large_recount_ms": round(statistics.median(longest) * 1000, 1)}))


if __name__ == "__main__":
    main()
