"""The outbox bridge with the real broker: ids-only messages, fast POSTs while Redis is down,
delivery once it is back, retries, failed jobs and the jobs CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import func, text, update

from models.jobs import KIND_MAIL, KIND_MANAGERS
from models.outbox import Job
from tasks import outbox
from tests.conftest import RUN_ID, ScimClient, make_org
from tests.fixtures_worker import QUEUE, free_port, make_worker_app, wait_until
from tests.integration.worker_helpers import all_jobs_settled, jobs_of, person


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_a_broker_refusing_connections_fails_a_publish_at_once(worker_env, scheme) -> None:
    """The publishing thread gives up on the first refused connection (the job stays pending
    for the sweep) instead of kombu's reconnect loop, which held it 6 s per attempt, with
    every later publish of the process queued behind it."""
    url = {"redis": f"redis://127.0.0.1:{free_port()}/0",
           "amqp": f"amqp://guest:guest@127.0.0.1:{free_port()}//"}[scheme]
    app = make_worker_app({**worker_env, "CELERY_BROKER_URL": url})
    celery = app.extensions["celery"]
    with app.app_context():
        started = time.monotonic()
        with pytest.raises(Exception, match="refused"):
            celery.send_task("tasks.outbox.sweep", queue=QUEUE, retry=False)
        assert time.monotonic() - started < 1.0
    app.extensions["db.engine"].dispose()


def test_messages_carry_the_job_id_only(worker_env) -> None:
    """Nobody consumes this queue: read what was published straight from Redis."""
    queue = f"{QUEUE}-peek"
    app = make_worker_app({**worker_env, "WORKTEAM_CELERY_QUEUE": queue})
    client = redis.Redis.from_url(worker_env["REDIS_URL"])
    try:
        scim = ScimClient(app.test_client(), make_org(app))
        user = person(scim, "secret-name", displayName="Very Personal", password="S3cret!pw")
        wait_until(lambda: client.llen(queue) >= 2, timeout=5)
        raw = [json.loads(m) for m in client.lrange(queue, 0, -1)]
        ids = {j.id for j in jobs_of(app, scim.org.id)}
        names = set()
        for message in raw:
            names.add(message["headers"]["task"])
            args, kwargs, _ = json.loads(__import__("base64").b64decode(message["body"]))
            assert len(args) == 1 and args[0] in ids and kwargs == {}
            assert "argsrepr" in message["headers"] and user["userName"] not in json.dumps(message)
        assert names == {"tasks.managers.resolve_org", "tasks.licenses.check"}
        for job in jobs_of(app, scim.org.id):  # payloads: ids and flags only
            assert user["userName"] not in json.dumps(job.payload)
    finally:
        client.delete(queue)
        client.close()
        app.extensions["db.engine"].dispose()


@pytest.mark.usefixtures("worker")
def test_post_is_fast_with_the_broker_down_and_delivered_later(worker_env, worker_app) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/13"
    app = make_worker_app({**worker_env, "CELERY_BROKER_URL": dead})
    try:
        scim = ScimClient(app.test_client(), make_org(app, seats=10))
        scim.get("/Users")  # warm the database pool: time the publish, not the first connect
        outbox.reset_broker_backoff()
        timings = []
        users = []
        for name in ("first", "second"):
            started = time.monotonic()
            users.append(person(scim, name))  # asserts 201
            timings.append(time.monotonic() - started)
        assert max(timings) < 1.0, timings
        jobs = jobs_of(app, scim.org.id)
        assert jobs and all(j.state == "pending" and j.published_at is None for j in jobs)
        got = scim.get(f"/Users/{users[0]['id']}").get_json()
        assert got["userName"] == users[0]["userName"]  # the SCIM answer is unchanged
    finally:
        app.extensions["db.engine"].dispose()
        outbox.reset_broker_backoff()
    # The broker is back (the worker app publishes to the live one): the sweep delivers. The
    # sweep takes the oldest pending jobs first, and other tests leave jobs pending on purpose
    # (published to an idle queue): set theirs aside so this sweep reaches this org's jobs.
    with worker_app.app_context():
        with worker_app.extensions["db.sessions"]() as session:
            session.execute(
                update(Job)
                .where(Job.state == "pending", Job.org_id != scim.org.id)
                .values(published_at=func.now() + text("interval '1 hour'"))
            )
            session.commit()
        assert outbox.republish_due(after=0) >= len(jobs)
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id), timeout=60)
    assert {j.state for j in jobs_of(worker_app, scim.org.id)} == {"done"}


@pytest.fixture
def own_redis() -> Iterator[dict]:
    """A redis-server of this test's own, stopped and started again by the test."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not installed")
    port = free_port()
    procs: list[subprocess.Popen] = []

    def start() -> None:
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL,
        ))
        wait_until(lambda: _ping(port), timeout=10)

    def stop() -> None:
        procs[-1].terminate()
        procs[-1].wait(timeout=10)

    start()
    yield {"url": f"redis://127.0.0.1:{port}/0", "start": start, "stop": stop}
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def _ping(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.2).ping())
    except redis.RedisError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_redis_stopped_during_post_then_back(worker_env, own_redis, start_worker) -> None:
    env = {
        **worker_env,
        "CELERY_BROKER_URL": own_redis["url"],
        "REDIS_URL": own_redis["url"],
        "WORKTEAM_CELERY_QUEUE": f"wt-{RUN_ID}-own-redis",
        "WORKTEAM_REPUBLISH_AFTER_SECONDS": "1",
    }
    start_worker(env=env, concurrency=1, beat=True)
    app = make_worker_app(env)
    try:
        scim = ScimClient(app.test_client(), make_org(app, seats=10))
        person(scim, "warm")
        wait_until(lambda: all_jobs_settled(app, scim.org.id), timeout=20)
        own_redis["stop"]()
        outbox.reset_broker_backoff()
        before = max(j.id for j in jobs_of(app, scim.org.id))
        started = time.monotonic()
        person(scim, "during-outage")
        assert time.monotonic() - started < 1.0
        pending = [j for j in jobs_of(app, scim.org.id) if j.id > before]
        assert len(pending) == 2 and {j.state for j in pending} == {"pending"}
        own_redis["start"]()
        wait_until(lambda: all_jobs_settled(app, scim.org.id), timeout=60)
        assert {j.state for j in jobs_of(app, scim.org.id)} == {"done"}
    finally:
        app.extensions["db.engine"].dispose()
        outbox.reset_broker_backoff()


@pytest.mark.usefixtures("worker")
def test_permanent_failure_then_cli_retry(worker_app, smtp_server) -> None:
    scim = ScimClient(worker_app.test_client(), make_org(worker_app, seats=10))
    name = f"refused-{RUN_ID}-{time.monotonic_ns()}@example.com"
    smtp_server.reject.add(name)
    try:
        scim.create_user(name, emails=[{"value": name, "primary": True}])
        job = wait_until(lambda: [j for j in jobs_of(worker_app, scim.org.id, KIND_MAIL)
                                  if j.state == "failed"])[0]
        assert job.attempts == 1 and "550" in job.error  # permanent: no retries
        runner = worker_app.test_cli_runner()
        with worker_app.app_context():
            listed = runner.invoke(args=["jobs", "list", "--state", "failed",
                                         "--org", str(scim.org.id)])
        assert listed.exit_code == 0, listed.output
        assert [json.loads(line)["id"] for line in listed.output.splitlines()] == [job.id]
    finally:
        smtp_server.reject.discard(name)
    with worker_app.app_context():
        retried = runner.invoke(args=["jobs", "retry", str(job.id)])
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.output) == {"retried": [job.id]}
    wait_until(lambda: smtp_server.to(name))
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    with worker_app.app_context():
        assert runner.invoke(args=["jobs", "retry", "--all-failed"]).exit_code == 0
        assert runner.invoke(args=["jobs", "retry"]).exit_code != 0


@pytest.mark.timeout(90)
def test_transient_failures_end_failed_after_the_last_attempt(worker_env, start_worker) -> None:
    """SMTP unreachable for good: retried with backoff, then `failed` with the error text."""
    env = {**worker_env, "SMTP_URL": f"smtp://127.0.0.1:{free_port()}",
           "WORKTEAM_CELERY_QUEUE": f"wt-{RUN_ID}-attempts", "WORKTEAM_TASK_MAX_ATTEMPTS": "3"}
    start_worker(env=env, concurrency=1)
    app = make_worker_app(env)
    try:
        scim = ScimClient(app.test_client(), make_org(app, seats=10))
        person(scim, "never-mailed")
        job = wait_until(lambda: [j for j in jobs_of(app, scim.org.id, KIND_MAIL)
                                  if j.state == "failed"], timeout=60)[0]
        assert job.attempts == 3 and job.error.startswith("ConnectionRefusedError")
        assert job.finished_at is not None
    finally:
        app.extensions["db.engine"].dispose()


@pytest.mark.usefixtures("worker")
def test_bad_data_fails_at_once(worker_app) -> None:
    from models.jobs import enqueue

    org = make_org(worker_app)
    with worker_app.app_context():
        session = worker_app.extensions["db.sessions"]()
        # A manager job whose user id is not a UUID: a permanent failure, no retries.
        job_id = enqueue(session, org.id, KIND_MANAGERS, f"bad-{org.id}",
                         payload={"user_id": "not-a-uuid"})
        session.commit()
        session.close()
        outbox.publish([job_id])
    job = wait_until(lambda: [j for j in jobs_of(worker_app, org.id) if j.state == "failed"])[0]
    assert job.attempts == 1 and job.error.startswith("ValueError")


def test_transient_classification_and_backoff() -> None:
    import smtplib

    from sqlalchemy.exc import OperationalError

    assert outbox.is_transient(ConnectionRefusedError())
    assert outbox.is_transient(smtplib.SMTPServerDisconnected())
    assert outbox.is_transient(smtplib.SMTPResponseException(451, b"try later"))
    assert not outbox.is_transient(smtplib.SMTPResponseException(550, b"no"))
    assert not outbox.is_transient(smtplib.SMTPRecipientsRefused({"a@x": (550, b"no")}))
    assert outbox.is_transient(OperationalError("select 1", {}, Exception("gone")))
    assert not outbox.is_transient(ValueError())
    delays = [outbox.backoff(n) for n in range(1, 12)]
    base, cap = 10.0, 900.0  # production defaults
    for n, d in enumerate(delays, start=1):
        top = min(cap, base * 2 ** (n - 1))
        assert top / 2 <= d <= top


def test_coalesced_job_is_claimed_only_after_every_write_that_joined_it(app) -> None:
    """The race coalescing must close: a write joins the waiting job, a worker claims the job
    before the write commits and would miss it. The claim has to wait for the write."""
    import threading

    from models.jobs import (
        KIND_MANAGERS_ORG,
        claim_coalesced,
        enqueue_coalesced,
    )

    org = make_org(app)
    sessions = app.extensions["db.sessions"]
    with sessions() as first:
        (job_id,) = enqueue_coalesced(first, org.id, KIND_MANAGERS_ORG)
        first.commit()
    assert job_id is not None
    writer = sessions()
    assert enqueue_coalesced(writer, org.id, KIND_MANAGERS_ORG) == []  # joined the same job
    claimed = threading.Event()

    def claim() -> None:
        with app.extensions["db.autocommit_engine"].connect() as worker:
            claim_coalesced(worker, job_id)
        claimed.set()

    thread = threading.Thread(target=claim)
    thread.start()
    try:
        assert not claimed.wait(1.0), "the claim did not wait for the write that joined the job"
        writer.commit()
        assert claimed.wait(10)
    finally:
        writer.close()
        thread.join(10)
    with sessions() as session:
        # Claimed: the next write makes a new job instead of joining the running one.
        assert session.get(Job, job_id).dedup_key == f"{KIND_MANAGERS_ORG}:{org.id}:{job_id}"
        assert enqueue_coalesced(session, org.id, KIND_MANAGERS_ORG) not in ([], [job_id])
        session.rollback()


CLAIM_IN_A_PROCESS = """
import sys
from models.db import make_engine
from models.jobs import claim_coalesced
with make_engine(sys.argv[1], autocommit=True).connect() as connection:
    claim_coalesced(connection, int(sys.argv[2]))
"""


def test_a_claimer_without_the_cpu_holds_up_no_write(app) -> None:
    """A worker may wait for the CPU at any moment (its threads share a GIL; it may run below the
    web's priority, tasks/priority.py). Its claim is stopped (SIGSTOP) while it waits for a
    write that joined the job; once that write commits, PostgreSQL grants the lock and must
    finish the claim by itself: the organization's next write goes through while the claimer
    is still stopped.
    (With the lock taken, the job detached and the commit sent in separate round trips, the
    stopped claimer held the lock, and the write timed out behind it.)"""
    import signal
    import sys

    from models.jobs import KIND_MANAGERS_ORG, enqueue_coalesced
    from tests.fixtures_worker import ROOT

    org = make_org(app)
    sessions = app.extensions["db.sessions"]
    with sessions() as first:
        (job_id,) = enqueue_coalesced(first, org.id, KIND_MANAGERS_ORG)
        first.commit()
    joined = sessions()
    assert enqueue_coalesced(joined, org.id, KIND_MANAGERS_ORG) == []
    claimer = subprocess.Popen([sys.executable, "-c", CLAIM_IN_A_PROCESS,
                                app.config["DATABASE_URL"], str(job_id)], cwd=ROOT)
    try:
        # Autocommit: a transaction would see one snapshot of pg_stat_activity throughout.
        with app.extensions["db.autocommit_engine"].connect() as watch:
            wait_until(lambda: watch.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
                " AND datname = current_database()")) == 1,
                timeout=20)
        claimer.send_signal(signal.SIGSTOP)
        joined.commit()
        with sessions() as next_write:
            next_write.execute(text("SET LOCAL statement_timeout = '3s'"))
            created = enqueue_coalesced(next_write, org.id, KIND_MANAGERS_ORG)
            next_write.commit()
        assert created and created != [job_id]  # the claimed job took no more writes
    finally:
        joined.close()
        claimer.send_signal(signal.SIGCONT)
        assert claimer.wait(20) == 0


def test_a_failed_coalesced_job_takes_no_more_writes(app) -> None:
    from models.jobs import KIND_MANAGERS_ORG, enqueue_coalesced

    org = make_org(app)
    sessions = app.extensions["db.sessions"]
    with sessions() as session:
        (job_id,) = enqueue_coalesced(session, org.id, KIND_MANAGERS_ORG)
        session.commit()
    with app.app_context(), pytest.raises(outbox.JobFailed):
        outbox._failed(None, job_id, ValueError("bad data"))  # permanent: no retry, no task
    with sessions() as session:
        job = session.get(Job, job_id)
        assert (job.state, job.dedup_key) == ("failed", f"{KIND_MANAGERS_ORG}:{org.id}:{job_id}")
        assert enqueue_coalesced(session, org.id, KIND_MANAGERS_ORG) not in ([], [job_id])
        session.rollback()
