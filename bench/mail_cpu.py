"""The worker's CPU per welcome mail, in one process: what W1 costs the Celery worker per user.

    .venv/bin/python bench/mail_cpu.py [--mails 300] [--db bench_ours]

On the database a `bench/run.py` run left (its first organization): creates ``--mails`` users
through the app (a WSGI test client; no worker runs, so their mails wait), runs the license
check that gives them seats and queues their welcome mails, then sends them as a send task's
batch does (``tasks.notifications.send_waiting``: one SMTP session, each mail in a transaction
of its own) to an aiosmtpd sink it starts, and prints the CPU time per mail of that batch
(rendering, SMTP client, the statements; not the sink's). Compare alternated runs of old and
new code: the figure is noisy by a few percent.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from instructions import SMTP_SINK_PORT, environment, organization_and_token  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=300)
    parser.add_argument("--db", default="bench_ours")
    args = parser.parse_args()
    env = environment(args.db)
    os.environ.update(env)
    sink = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-c",
                             "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{SMTP_SINK_PORT}"])
    try:
        print(f"{send_batch(env, args.mails):.0f} µs of worker CPU per welcome mail "
              f"({args.mails} mails, one SMTP session, one process)")
    finally:
        sink.terminate()


def send_batch(env: dict[str, str], mails: int) -> float:
    import psycopg

    from tasks import db, licenses, mail, notifications
    from web import create_app

    org_id, token = organization_and_token(env)
    org = uuid.UUID(org_id)
    app = create_app()
    client = app.test_client()
    tag = f"mail{os.getpid()}-{uuid.uuid4().hex[:6]}"
    for n in range(mails):
        user = f"{tag}-{n}@bench.example"
        created = client.post(
            f"/scim/v2/{org}/Users", headers={"Authorization": f"Bearer {token}"},
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user,
                  "name": {"givenName": "Given", "familyName": f"Family{n}"},
                  "emails": [{"value": user, "type": "work", "primary": True}]})
        if created.status_code != 201:
            raise SystemExit(f"create: {created.status_code} {created.data[:300]!r}")
    with app.app_context():
        with db.session() as session:
            licenses.reconcile_org(session, org)  # seats, and the welcome mails queued
            session.commit()
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            first = conn.execute(
                "SELECT min(j.id) FROM jobs j JOIN users u"
                " ON CAST(u.id AS text) = j.payload ->> 'recipient_id'"
                " WHERE j.kind = 'mail.send' AND j.state = 'pending' AND u.user_name LIKE %s",
                (f"{tag}-%",)).fetchone()[0]
        if first is None:
            raise SystemExit("no welcome mail was queued (is the organization on a paid plan?)")
        with mail.Mailer(env["SMTP_URL"]) as mailer:
            started = time.process_time()
            # The first mail's job is its task's own (run_job); the batch is every one after it.
            sent = notifications.send_waiting(first, mailer, limit=mails - 1)
            spent = time.process_time() - started
    if sent != mails - 1:
        raise SystemExit(f"{sent} of {mails - 1} mails sent")
    return spent / sent * 1e6


if __name__ == "__main__":
    main()
