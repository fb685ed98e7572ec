"""Outbox retention at scale: seconds for tasks.outbox.prune to delete N expired finished jobs
and N expired mail records while what must stay stays, and the cost of the next run, which
finds nothing to delete but walks over the rows kept for good.

    .venv/bin/python bench/bench_outbox_prune.py [--expired 1000000] [--recent 100000]

Makes its own database (workteam_bench_outbox, dropped afterwards), one organization, and in
each table N rows aged 100-40 days then M rows of the last day (in that order, as the outbox
appends them). Jobs: done welcome mails, one in 10,000 failed. Mail records: half welcome
(kept for good), half deactivation notices. `VACUUM ANALYZE`, then the task runs in this
process (no broker) with the default retention of 30 days, as many runs as it takes (a run
stops after a minute), then once more. Prints one JSON line.
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

# Row n of a seeding: %(from)s seconds ago, then every %(step)s seconds later.
JOBS = """
    INSERT INTO jobs (org_id, kind, dedup_key, subject_id, payload, state, attempts,
                      progress_done, progress_total, created, updated, finished_at)
    SELECT %(org)s, 'mail.send', 'mail.send:welcome:' || %(tag)s || n, n::text,
           jsonb_build_object('template', 'welcome', 'event', 'welcome:' || n),
           CASE WHEN n %% 10000 = 0 THEN 'failed' ELSE 'done' END, 1, 0, 0, at, at, at
    FROM generate_series(1, %(rows)s::int) n,
         LATERAL (SELECT now() - make_interval(secs => %(from)s - n * %(step)s) AS at) t
"""
MAILS = """
    INSERT INTO sent_mail (org_id, event_key, template, recipient, state, created, sent_at)
    SELECT %(org)s, %(tag)s || n, CASE WHEN n %% 2 = 0 THEN 'welcome' ELSE 'deactivated' END,
           'someone@example.com', 'sent', at, at
    FROM generate_series(1, %(rows)s::int) n,
         LATERAL (SELECT now() - make_interval(secs => %(from)s - n * %(step)s) AS at) t
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--recent", type=int, default=100_000)
    args = parser.parse_args()
    with own_database("workteam_bench_outbox") as url:
        run(url, args.expired, args.recent)


def run(url: str, expired: int, recent: int) -> None:
    from tasks import outbox

    day = 86_400.0
    with psycopg.connect(url, autocommit=True) as conn:
        org = new_org(conn, 10)
        for statement in (JOBS, MAILS):
            conn.execute(statement, {"org": org, "tag": "old-", "rows": expired,
                                     "from": 100 * day, "step": 60 * day / expired})
            conn.execute(statement, {"org": org, "tag": "new-", "rows": recent,
                                     "from": day, "step": day / max(recent, 1)})
        conn.execute("VACUUM ANALYZE jobs")
        conn.execute("VACUUM ANALYZE sent_mail")
    app = app_on(url, "redis://127.0.0.1:6379/13")
    deleted, runs, started = 0, 0, time.perf_counter()
    with app.app_context(), timed_calls(outbox, "prune_from") as batches:
        while True:
            runs += 1
            done = outbox.prune()
            deleted += done
            if not done:
                break
        seconds = time.perf_counter() - started
        again = time.perf_counter()
        outbox.prune()
        idle_run = time.perf_counter() - again
    with psycopg.connect(url) as conn:
        jobs_left = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        mail_left = conn.execute("SELECT count(*) FROM sent_mail").fetchone()[0]
    batches.sort()
    print(json.dumps({
        "expired_per_table": expired, "recent_per_table": recent, "deleted": deleted,
        "jobs_left": jobs_left, "mail_records_left": mail_left,
        "seconds": round(seconds, 2), "rows_per_s": round(deleted / seconds),
        "task_runs": runs, "batches": len(batches),
        "batch_p50_ms": round(batches[len(batches) // 2] * 1000, 1),
        "batch_max_ms": round(batches[-1] * 1000, 1),
        "next_run_s": round(idle_run, 2),
    }))


if __name__ == "__main__":
    main()
