"""An import of a large organization: every page of GET /Users?startIndex=...&count=100, as
Okta's import asks for them, and what a page costs at the start and at the end.

    .venv/bin/python bench/bench_import.py [--users 1000000]

Makes its own database (workteam_bench_import, dropped afterwards), one organization of N
users (inserted directly, then VACUUM ANALYZE as autovacuum would), and runs in this process
through the Flask test client (the figure is the service's work, not HTTP's):
  1. the whole walk, page after page (each continues where the last ended: positions.py);
  2. the last page asked for cold (its position dropped from Redis: OFFSET), as a client that
     jumps there would;
  3. totalResults both ways: COUNT(*) over the organization against the tally.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402

from bench.scratch_app import app_on, org_with_token, own_database  # noqa: E402

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1_000_000)
    args = parser.parse_args()
    with own_database("workteam_bench_import") as url:
        run(url, args.users)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def run(url: str, n: int) -> None:
    app = app_on(url, REDIS_URL, WORKTEAM_RATE_LIMIT="0")
    from models import store
    from tests.integration.resync_helpers import bulk_users

    sessions = app.extensions["db.sessions"]
    org_id, token = org_with_token(app)
    with sessions() as session:
        started = time.perf_counter()
        bulk_users(session, org_id, n, prefix="imp", chunk=20_000)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"# seeded {n} users in {time.perf_counter() - started:.0f}s", file=sys.stderr)

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/scim/v2/{org_id}/Users"

    def page(start: int) -> float:
        began = time.perf_counter()
        response = client.get(path, query_string={"startIndex": start, "count": 100},
                              headers=headers)
        took = time.perf_counter() - began
        body = response.get_json()
        assert response.status_code == 200 and body["totalResults"] == n, body
        assert len(body["Resources"]) == min(100, n - start + 1)
        return took

    starts = list(range(1, n + 1, 100))
    began = time.perf_counter()
    walk = [page(s) for s in starts]
    walk_s = time.perf_counter() - began
    redis.Redis.from_url(REDIS_URL).delete(*redis.Redis.from_url(REDIS_URL).keys(
        f"wt:pos:{org_id}:*"))
    cold_last = min(page(starts[-1]) for _ in range(3))

    with psycopg.connect(url) as conn:
        began = time.perf_counter()
        conn.execute("SELECT count(*) FROM users WHERE org_id = %s", (org_id,)).fetchone()
        count_s = time.perf_counter() - began
    with sessions() as session:
        began = time.perf_counter()
        store.user_tally(session, org_id)
        tally_s = time.perf_counter() - began

    print(json.dumps({
        "users": n,
        "pages": len(walk),
        "walk_s": round(walk_s, 2),
        "page_ms_p50": _ms(statistics.median(walk)),
        "first_10_pages_ms": _ms(statistics.mean(walk[:10])),
        "last_10_pages_ms": _ms(statistics.mean(walk[-10:])),
        "last_page_cold_offset_ms": _ms(cold_last),
        "count_star_ms": _ms(count_s),
        "tally_ms": _ms(tally_s),
    }))


if __name__ == "__main__":
    main()
