"""Manager resolution at scale (W6 behind the HTTP layer): N users (default 100,000), each but
the root with a manager (a tree, 10 reports each), created in random order through
``models.store`` (the SCIM write path without HTTP: same transaction, same outbox rows), each
batch committed and then published like a request; a real Celery worker resolves. Reports the
seconds from the last create until no reference is pending, and the query plans of the
per-user lookups (all index scans: no scan over the organization per user).

    .venv/bin/python bench/bench_managers.py                 # 100,000 users, 2 worker processes
    .venv/bin/python bench/bench_managers.py --users 10000 --keys mixed --concurrency 2

Uses its own database (workteam_bench_<id>, dropped at the end unless --keep) and its own
Celery queue on REDIS_URL; needs PostgreSQL and Redis as in scripts/test.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from models import migrate, store  # noqa: E402
from models.organization import Organization  # noqa: E402
from models.outbox import Job  # noqa: E402
from models.user import User  # noqa: E402

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
KEYS = ("externalId", "userName", "employeeNumber")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--fanout", type=int, default=10, help="reports per manager")
    ap.add_argument("--keys", choices=["externalId", "mixed"], default="externalId",
                    help="manager.value by externalId, or a random one of externalId/userName/"
                         "employeeNumber")
    ap.add_argument("--batch", type=int, default=200, help="users per committed transaction")
    ap.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
    ap.add_argument("--paid", action="store_true", help="paid org: license checks run as well")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--settle-max", type=float, default=1800)
    ap.add_argument("--keep", action="store_true", help="keep the database")
    args = ap.parse_args()

    run_id = uuid.uuid4().hex[:8]
    base = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    db_name = f"workteam_bench_{run_id}"
    database_url = urlunsplit(urlsplit(base)._replace(path=f"/{db_name}"))
    queue = f"bench-managers-{run_id}"
    env = {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": f"bench-{run_id}",
        "PUBLIC_URL": "http://bench.invalid", "SMTP_URL": "smtp://127.0.0.1:9",
        "WORKTEAM_ENV": "production", "WORKTEAM_CELERY_QUEUE": queue,
        "WORKTEAM_REPUBLISH_AFTER_SECONDS": "120",
    }
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    worker = None
    try:
        migrate.upgrade(database_url)
        os.environ.update(env)
        from web import create_app

        app = create_app({"ENV_OVERRIDES": env, **{k: v for k, v in env.items()
                                                    if k.startswith("WORKTEAM_")}})
        log = Path(tempfile.mkdtemp(prefix="bench-managers-")) / "worker.log"
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks.celery_app", "worker",
             "-Q", f"{queue},{queue}.mail",
             "-n", f"{queue}@%h", "--concurrency", str(args.concurrency), "--loglevel",
             "WARNING", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env={**os.environ, **env}, stdout=log.open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        result = run(app, args, worker)
        result.update({"worker_log": str(log), "command": " ".join(sys.argv)})
        print(json.dumps(result))
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)
        if not args.keep:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def run(app, args: argparse.Namespace, worker: subprocess.Popen) -> dict:  # type: ignore[no-untyped-def]
    from tasks.outbox import publish

    rng = random.Random(args.seed)
    n = args.users
    tag = uuid.uuid4().hex[:6]
    keys = [{"externalId": f"x{tag}{i}", "userName": f"u{i}-{tag}@bench.example",
             "employeeNumber": f"n{tag}{i}"} for i in range(n)]
    sessions = app.extensions["db.sessions"]
    with sessions() as session:
        org = Organization(name="bench managers", plan="paid" if args.paid else "free",
                           seats=n, scim_enabled=True)
        session.add(org)
        session.commit()
        org_id = org.id

    def attrs(i: int) -> dict:
        a: dict = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
                   "userName": keys[i]["userName"], "externalId": keys[i]["externalId"],
                   ENT: {"employeeNumber": keys[i]["employeeNumber"]}}
        if i:
            key = "externalId" if args.keys == "externalId" else rng.choice(KEYS)
            a[ENT]["manager"] = {"value": keys[(i - 1) // args.fanout][key]}
        return a

    order = list(range(n))
    rng.shuffle(order)
    time.sleep(3)  # let the worker boot (its start is not part of the figure)
    assert worker.poll() is None, "worker exited"
    started = time.perf_counter()
    with app.app_context():
        for offset in range(0, n, args.batch):
            with sessions() as session:
                session.get(Organization, org_id)  # in the identity map for the follow-ups
                jobs: list[int] = []
                for i in order[offset:offset + args.batch]:
                    jobs += store.create_user(session, org_id, attrs(i)).job_ids
                session.commit()
            publish(jobs)
            if (offset // args.batch) % 20 == 19:
                print(f"{offset + args.batch} created, {time.perf_counter() - started:.0f}s",
                      file=sys.stderr, flush=True)
    last_create = time.perf_counter()
    create_s = last_create - started

    def pending() -> int:
        with sessions() as session:
            return session.scalar(select(func.count()).where(
                User.org_id == org_id, User.manager_state == "pending")) or 0

    left = pending()
    at_last_create = left
    while left and time.perf_counter() - last_create < args.settle_max:
        time.sleep(0.5)
        left = pending()
    settle_s = time.perf_counter() - last_create
    with sessions() as session:
        states = dict(session.execute(select(User.manager_state, func.count()).where(
            User.org_id == org_id).group_by(User.manager_state)).all())
        jobs_by_state = dict(session.execute(select(Job.state, func.count()).where(
            Job.org_id == org_id, Job.kind.startswith("managers.")).group_by(Job.state)).all())
        # Every link correct: each user's manager is the user its reference was built from.
        wrong = session.scalar(text(
            "SELECT count(*) FROM users u JOIN users m ON m.id = u.manager_id "
            "WHERE u.org_id = :o AND NOT (u.manager_value IN "
            "(m.external_id, m.user_name, m.employee_number, m.id::text))"), {"o": org_id})
        plans = explain(session, org_id, keys[n // 2]["externalId"])
    return {
        "users": n, "fanout": args.fanout, "keys": args.keys, "batch": args.batch,
        "worker_concurrency": args.concurrency, "paid": args.paid,
        "create_s": round(create_s, 1), "creates_per_s": round(n / create_s, 1),
        "pending_at_last_create": at_last_create,
        "last_create_to_all_resolved_s": round(settle_s, 1) if not left else None,
        "pending_at_end": left, "manager_states": states, "jobs": jobs_by_state,
        "wrong_links": wrong, "plans": plans,
    }


# The per-user statements of models/managers.py, as PostgreSQL runs them once psycopg has
# prepared them: generic plans, parameters unknown ($n), literals as in the code.
PER_USER_SQL = {
    "find_manager": ("(uuid, text)", "SELECT id FROM users WHERE org_id = $1 AND (external_id = $2"
                     " OR lower(user_name) = lower($2) OR employee_number = $2) LIMIT 50"),
    "pending_naming": ("(uuid, text, text)", "SELECT id FROM users WHERE org_id = $1 AND "
                       "users.manager_state = 'pending' AND lower(manager_value) = $2 UNION ALL "
                       "SELECT id FROM users WHERE org_id = $1 AND users.manager_state = "
                       "'pending' AND lower(manager_value) = $3"),
    "reports_of": ("(uuid)", "SELECT id FROM users WHERE manager_id = $1"),
    "manages": ("(uuid, uuid)", "WITH RECURSIVE chain(id, depth) AS (SELECT manager_id, 1 FROM "
                "users WHERE id = $1 AND manager_state = 'resolved' UNION ALL SELECT "
                "users.manager_id, chain.depth + 1 FROM users, chain WHERE users.id = chain.id "
                "AND users.manager_state = 'resolved' AND chain.depth < 10000) "
                "SELECT id FROM chain WHERE id = $2 LIMIT 1"),
}


def explain(session, org_id: uuid.UUID, value: str) -> dict:  # type: ignore[no-untyped-def]
    """Generic plans of the per-user queries on the full organization: index scans only."""
    some = session.scalar(select(User).where(User.org_id == org_id, User.external_id == value))
    args = {
        "find_manager": (org_id, value),
        "pending_naming": (org_id, value.lower(), str(some.id)),
        "reports_of": (some.id,),
        "manages": (some.id, some.id),
    }
    session.execute(text("SET plan_cache_mode = force_generic_plan"))
    out = {}
    for name, (types, sql) in PER_USER_SQL.items():
        session.execute(text(f"PREPARE bench_{name} {types} AS {sql}"))
        values = ", ".join(f"'{a}'" for a in args[name])
        rows = session.execute(text(f"EXPLAIN EXECUTE bench_{name}({values})")).scalars().all()
        out[name] = [r.strip() for r in rows if "Scan" in r]
        session.execute(text(f"DEALLOCATE bench_{name}"))
    return out


if __name__ == "__main__":
    main()
