"""SCIM filters at scale: milliseconds per `GET /Users?filter=...&count=10` (in-process, through
the Flask test client) for the filters IdPs send and a few they may, in an organization of
N users.

    .venv/bin/python bench/bench_filters.py [--users 300000] [--runs 5]

Makes its own database (workteam_bench_filters, dropped afterwards), one organization of N
users (every tenth user but the first ten has a manager), `VACUUM ANALYZE`, then prints one
JSON line: the median ms of each filter and its totalResults. An indexed filter answers in a
few ms at any N; the others read the organization's users.
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

from bench.scratch_app import app_on, org_with_token, own_database  # noqa: E402

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with own_database("workteam_bench_filters") as url:
        run(url, args.users, args.runs)


def run(url: str, n: int, runs: int) -> None:
    app = app_on(url, "redis://127.0.0.1:6379/13", WORKTEAM_RATE_LIMIT="0")
    from tests.integration.resync_helpers import bulk_users

    org_id, token = org_with_token(app)
    with app.extensions["db.sessions"]() as session:
        ids = bulk_users(session, org_id, n, prefix="f", chunk=20_000, manager_every=10)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    mid = n // 2
    filters = {
        "userName eq": f'userName eq "f{mid}@example.com"',
        "userName eq, other case": f'userName eq "F{mid}@EXAMPLE.COM"',
        "externalId eq": f'externalId eq "ext-f{mid}"',
        "id eq": f'id eq "{ids[mid]}"',
        "emails.value eq": f'emails.value eq "f{mid}@example.com"',
        "emails[primary].value eq": f'emails[primary eq true].value eq "f{mid}@example.com"',
        "manager.value eq": f'{ENTERPRISE}:manager.value eq "{ids[mid // 10]}"',
        "userName sw": f'userName sw "f{mid}"',
        "active eq false": "active eq false",
        "meta.lastModified gt": 'meta.lastModified gt "2099-01-01T00:00:00Z"',
    }
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    results = {}
    for name, text in filters.items():
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(f"/scim/v2/{org_id}/Users", headers=headers,
                                  query_string={"filter": text, "count": 10})
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.get_json()
        results[name] = {"ms": round(statistics.median(times), 1),
                         "total": response.get_json()["totalResults"]}
    print(json.dumps({"users": n, "runs": runs, "filters": results}))


if __name__ == "__main__":
    main()
