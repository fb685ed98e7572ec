"""W2 again, on the database a run left behind, with gunicorn alone (no worker, nothing else
running): is a lookup at 100,000 users slower than at 1,000 by itself, or only beside what a run
does just before it (W6's mail backlog, a cold cache)?

    .venv/bin/python bench/w2_steady.py [bench_ours]

Lookups over every user of the database, over its first 1,000, then over every user again;
8 s each, 16 clients, as in run.py. Starts gunicorn on 127.0.0.1:18104 with a new SCIM token
of the database's first organization, and stops it at the end.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import psycopg
from loadgen import Client, run_phase
from servers import PG_URL, REPO, Ours


def main(db: str) -> None:
    env = {**os.environ, "DATABASE_URL": PG_URL.format(db=db), "REDIS_URL": Ours.redis_url,
           "SECRET_KEY": "w2-steady-" + "x" * 32, "PUBLIC_URL": "http://127.0.0.1:18104",
           "SMTP_URL": "smtp://127.0.0.1:18125", "WORKTEAM_RATE_LIMIT": "1000000"}
    with psycopg.connect(PG_URL.format(db=db)) as conn:
        org = conn.execute("SELECT id FROM organizations ORDER BY created LIMIT 1").fetchone()[0]
        names = [row[0] for row in conn.execute("SELECT user_name FROM users ORDER BY seq")]
    venv = REPO / ".venv" / "bin"
    out = subprocess.run([str(venv / "flask"), "--app", "web", "scim", "token", str(org)],
                         capture_output=True, text=True, env=env, cwd=REPO, check=True).stdout
    token = Ours.last_json(out)["token"]
    web = subprocess.Popen([str(venv / "gunicorn"), "-c", str(REPO / "bench" / "gunicorn.conf.py"),
                            "-b", "127.0.0.1:18104", "web:create_app()"],
                           env=env, cwd=REPO, start_new_session=True)
    try:
        time.sleep(6)
        rng = random.Random(1)

        async def lookup(client: Client, name: str) -> None:
            await client.call("GET", f'/Users?filter=userName eq "{name}"', expect=(200,))

        for label, pool in (("every user", names), ("first 1,000", names[:1000]),
                            ("every user again", names)):
            items = [rng.choice(pool) for _ in range(50_000)]
            result = run_phase(f"W2 {label}", f"http://127.0.0.1:18104/scim/v2/{org}", token,
                               items, lookup, concurrency=16, max_seconds=8)
            print(f"{label:18s} ({len(pool):>7,} users): {result.ops_per_s:6.1f} req/s, "
                  f"p50 {result.pct(50):5.1f} ms, machine {result.machine_cpu_pct:.0f}%, "
                  f"errors {result.errors}")
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else Ours.db)
