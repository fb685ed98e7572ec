"""Bulk re-sync of 100,000 users: seconds for one run of tasks.resync (in this process, so the
figure is the task's work, not broker latency).

    .venv/bin/python bench/bench_resync.py [--users 100000] [--export]

Makes its own database (workteam_bench_resync, dropped afterwards), one paid organization with
90,000 seats, N users in a management tree (every user but the first 10 has a manager; 1% of
the references left pending, as if their managers had arrived after them), then runs
  1. a re-sync (managers re-checked/resolved, licenses recomputed, failed mail resent), and
  2. with --export, a dry run against an IdP export (CSV of every user, 1% deactivated there,
     0.5% gone) followed by the confirmed apply.
Prints one JSON line per run: seconds, users, phase counts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import update  # noqa: E402

from bench.scratch_app import app_on, own_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--export", action="store_true", help="also reconcile with an export")
    args = parser.parse_args()
    with own_database("workteam_bench_resync") as url:
        run(url, args.users, args.export)


def run(url: str, n: int, with_export: bool) -> None:
    os.environ.setdefault("WORKTEAM_CELERY_QUEUE", f"bench-resync-{uuid.uuid4().hex[:6]}")
    app = app_on(url, os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13"))
    from models import Organization
    from models.user import User
    from tasks.resync import run_job
    from tests.integration.resync_helpers import bulk_users
    from web.admin import actions

    sessions = app.extensions["db.sessions"]
    with sessions() as session:
        org = Organization(name="bench", plan="paid", seats=90_000, scim_enabled=True)
        session.add(org)
        session.commit()
        org_id = org.id
        t0 = time.perf_counter()
        ids = bulk_users(session, org_id, n, prefix="b", manager_every=10)
        pending = ids[10::100]
        session.execute(
            update(User)
            .where(User.id.in_(pending))
            .values(manager_state="pending", manager_id=None)
        )
        # Steady state: seats already handed out (oldest first), as the license task leaves them.
        from models import licensing

        licensing.reconcile(session, org_id)
        session.commit()
        print(f"# seeded {n} users in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    def timed(label: str, **kw: object) -> None:
        with app.test_request_context(), sessions() as session:
            job = actions.start_resync(session, session.get(Organization, org_id), **kw)
            job_id = job.id
        with app.app_context():
            start = time.perf_counter()
            outcome = run_job(job_id)
            seconds = time.perf_counter() - start
        with sessions() as session:
            from models.outbox import Job

            job = session.get(Job, job_id)
            summary = (job.result or {}).get("summary", {})
            diffs = {
                k: v["count"] for k, v in ((job.result or {}).get("differences") or {}).items()
            }
        print(
            json.dumps(
                {
                    "run": label,
                    "state": outcome["state"],
                    "users": n,
                    "seconds": round(seconds, 2),
                    "summary": summary,
                    "differences": diffs,
                }
            )
        )

    timed("resync", dry_run=False)
    timed("resync-again (nothing to repair)", dry_run=False)
    if with_export:
        lines = ["userName,externalId,active"]
        for i in range(n):
            if i % 200 == 7:
                continue  # gone from the IdP
            lines.append(f"b{i}@example.com,ext-b{i},{'false' if i % 100 == 3 else 'true'}")
        export = "\n".join(lines).encode()
        timed("export dry run", dry_run=True, export=export, filename="idp.csv")
        with sessions() as session:
            from models import resync as r

            export_id = uuid.UUID(r.latest_job(session, org_id).payload["export_id"])
        timed("export apply", dry_run=False, export_id=export_id)


if __name__ == "__main__":
    main()
