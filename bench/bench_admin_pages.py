"""The admin tabs at scale: milliseconds for the figures of the Users tab
(web/admin/actions.users_overview) in an organization of a million users, with each
statement's share, for the Activity tab (actions.activity) over two million audit rows,
unfiltered and with each kind of filter, and for the database gauges of a /metrics scrape
(web/metrics.DatabaseCollector, uncached).

    .venv/bin/python bench/bench_admin_pages.py [--users 1000000] [--events 2000000]
        [--jobs 1000000] [--runs 5]

Makes its own database (workteam_bench_admin, dropped afterwards), one paid organization with
seats for half its users: the first half licensed, the rest waiting, one in ten inactive, one
in a hundred with a pending manager reference; and its audit rows, one a second back from now,
alternately GET and POST, one in fifty a 409; and its done jobs (the outbox keeps them), one
in 10,000 failed (`VACUUM ANALYZE`d). Prints one JSON line per
tab: median ms over the runs (the Users tab: each statement of the last run; the Activity
tab: per filter; the scrape: each statement of the last run).
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
from sqlalchemy import event  # noqa: E402

from bench.scratch_app import app_on, new_org, own_database  # noqa: E402

SEED = (
    "INSERT INTO users (id, org_id, user_name, active, attrs, created, last_modified, version, "
    "manager_state, license_state, licensed_at, is_admin, emails_lower) "
    "SELECT gen_random_uuid(), %s, 'u' || n || '@example.com', n %% 10 <> 0, '{}', now(), "
    "now(), 1, CASE WHEN n %% 100 = 0 THEN 'pending' ELSE 'none' END, "
    "CASE WHEN n <= %s THEN 'licensed' ELSE 'unlicensed' END, now(), false, '{}' "
    "FROM generate_series(1, %s::int) n"
)


EVENTS = (
    "INSERT INTO audit_events (org_id, method, path, status, duration_ms, created) "
    "SELECT %s, CASE WHEN n %% 2 = 0 THEN 'GET' ELSE 'POST' END, '/scim/v2/x/Users/' || n, "
    "CASE WHEN n %% 50 = 0 THEN 409 ELSE 200 END, 1.0, now() - make_interval(secs => %s - n) "
    "FROM generate_series(1, %s::int) n"
)


JOBS = (
    "INSERT INTO jobs (org_id, kind, dedup_key, subject_id, payload, state, attempts, "
    "progress_done, progress_total, created, updated) "
    "SELECT %s, 'mail.send', 'bench:' || n, NULL, '{}', "
    "CASE WHEN n %% 10000 = 0 THEN 'failed' ELSE 'done' END, 1, 0, 0, now(), now() "
    "FROM generate_series(1, %s::int) n"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with own_database("workteam_bench_admin") as url:
        run(url, args.users, args.events, args.jobs, args.runs)


def run(url: str, users: int, events: int, jobs: int, runs: int) -> None:
    from models import Organization
    from web.admin import actions
    from web.metrics import DatabaseCollector

    with psycopg.connect(url, autocommit=True) as conn:
        org_id = new_org(conn, users // 2)
        conn.execute(SEED, (org_id, users // 2, users))
        conn.execute(EVENTS, (org_id, events, events))
        conn.execute(JOBS, (org_id, jobs))
        for table in ("users", "audit_events", "jobs"):
            conn.execute(f"VACUUM ANALYZE {table}")
    app = app_on(url, "redis://127.0.0.1:6379/13")
    statements: list[tuple[str, float]] = []

    def before(conn, _cursor, _statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        conn.info["started"] = time.perf_counter()

    def after(conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        ms = (time.perf_counter() - conn.info["started"]) * 1000
        statements.append((" ".join(statement.split())[:100], round(ms, 1)))

    engine = app.extensions["db.engine"]
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    times = []
    with app.app_context():
        for _ in range(runs):
            statements.clear()
            with app.extensions["db.sessions"]() as session:
                org = session.get(Organization, org_id)
                started = time.perf_counter()
                actions.users_overview(session, org)
                times.append((time.perf_counter() - started) * 1000)
        print(json.dumps({"tab": "users", "users": users, "runs": runs,
                          "median_ms": round(statistics.median(times)),
                          "statements_ms": statements}))
        filters: dict[str, dict] = {"none": {}, "status 4xx": {"status": "4xx"},
                                    "method POST": {"method": "POST"}, "page 50": {"page": 50},
                                    "rare path": {"path": "Users/12345"}}
        activity_ms = {}
        for name, kwargs in filters.items():
            times = []
            for _ in range(runs):
                with app.extensions["db.sessions"]() as session:
                    org = session.get(Organization, org_id)
                    started = time.perf_counter()
                    actions.activity(session, org, page_size=50, **kwargs)
                    times.append((time.perf_counter() - started) * 1000)
            activity_ms[name] = round(statistics.median(times), 1)
        print(json.dumps({"tab": "activity", "events": events, "runs": runs,
                          "median_ms": activity_ms}))
        collector = DatabaseCollector(engine, 0)
        times = []
        for _ in range(runs):
            statements.clear()
            started = time.perf_counter()
            collector._counts()
            times.append((time.perf_counter() - started) * 1000)
        print(json.dumps({"scrape": "/metrics database gauges", "runs": runs,
                          "median_ms": round(statistics.median(times), 1),
                          "statements_ms": statements}))


if __name__ == "__main__":
    main()
