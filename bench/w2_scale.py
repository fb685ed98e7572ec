"""W2 at a million users: lookups by userName over HTTP (gunicorn as deployed, 16 clients) in
an organization far larger than run.py grows one (110,000 users).

    .venv/bin/python bench/w2_scale.py [--users 1000000]

Makes its own database (workteam_bench_w2_scale, dropped afterwards) with one paid
organization of N users inserted directly (userName, externalId, a primary email: a little
less than W1 sends), runs VACUUM ANALYZE as autovacuum would, then `w2_steady.py`'s phases
on it: lookups over every user, over the first 1,000, over every user again (8 s each).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import psycopg  # noqa: E402
from w2_steady import main as w2_steady  # noqa: E402

from bench.scratch_app import app_on, org_with_token, own_database  # noqa: E402

NAME = "workteam_bench_w2_scale"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    args = parser.parse_args()
    from tests.integration.resync_helpers import bulk_users

    with own_database(NAME) as url:
        app = app_on(url, "redis://127.0.0.1:6379/15")
        org_id, _ = org_with_token(app, seats=args.users)
        started = time.perf_counter()
        with app.extensions["db.sessions"]() as session:
            bulk_users(session, org_id, args.users, prefix="w2s", chunk=20_000)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        print(f"# seeded {args.users:,} users in {time.perf_counter() - started:.0f}s",
              file=sys.stderr)
        w2_steady(NAME)


if __name__ == "__main__":
    main()
