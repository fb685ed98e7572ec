"""One license check (models/licensing.reconcile) in an organization of 100,000 users:
milliseconds per check, with PostgreSQL left to choose its plans and with generic plans forced
(what a connection may keep for a statement psycopg has prepared).

    .venv/bin/python bench/bench_license_check.py [--users 100000] [--checks 30] [--seats N]

Makes its own database (workteam_bench_license, dropped afterwards), one paid organization
with ``--seats`` seats (default: as many as users) and N active users (vacuumed and analyzed),
the first ``--seats`` of them licensed and the rest waiting; before each check two users are
deactivated, so every check releases two seats (and gives them to the next waiting, if any).
Prints one JSON line per plan mode: median and p90 ms per check.
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
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from bench.scratch_app import new_org, own_database  # noqa: E402

SEED = (
    "INSERT INTO users (id, org_id, user_name, active, attrs, created, last_modified, version, "
    "manager_state, license_state, licensed_at, is_admin, emails_lower) "
    "SELECT gen_random_uuid(), %s, 'u' || n || '@example.com', true, '{}', now(), now(), 1, "
    "'none', CASE WHEN n <= %s THEN 'licensed' ELSE 'unlicensed' END, "
    "CASE WHEN n <= %s THEN now() END, false, '{}' FROM generate_series(1, %s::int) n"
)
DEACTIVATE_TWO = (
    "UPDATE users SET active = false WHERE id IN "
    "(SELECT id FROM users WHERE org_id = %s AND active ORDER BY seq LIMIT 2)"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--checks", type=int, default=30)
    parser.add_argument("--seats", type=int, help="default: as many as users")
    args = parser.parse_args()
    with own_database("workteam_bench_license") as url:
        run(url, args.users, args.checks, args.seats or args.users)


def run(url: str, users: int, checks: int, seats: int) -> None:
    from models import licensing
    from models.db import sqlalchemy_url

    with psycopg.connect(url, autocommit=True) as admin:
        org_id = new_org(admin, seats)
        # The first `seats` users hold a seat, the rest wait (inserted so: the tally counts them).
        admin.execute(SEED, (org_id, seats, seats, users))
        admin.execute("VACUUM ANALYZE users")
        engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
        for mode in ("auto", "force_generic_plan"):
            with engine.connect() as conn:
                conn.execute(text(f"SET plan_cache_mode = {mode}"))
                times = []
                for _ in range(checks):
                    admin.execute(DEACTIVATE_TWO, (org_id,))
                    started = time.perf_counter()
                    with Session(bind=conn) as session:
                        licensing.reconcile(session, org_id)
                        session.commit()
                    times.append((time.perf_counter() - started) * 1000)
            times.sort()
            print(json.dumps({"plan_cache_mode": mode, "users": users, "seats": seats,
                              "checks": checks,
                              "median_ms": round(statistics.median(times), 2),
                              "p90_ms": round(times[int(len(times) * 0.9)], 2)}))
        engine.dispose()


if __name__ == "__main__":
    main()
