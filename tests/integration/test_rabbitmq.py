"""RabbitMQ as the Celery broker (``CELERY_BROKER_URL=amqp://...``; Redis stays the result
store, the rate limiter's and the heartbeat's): the follow-up work of a create and of a
deactivation reaches a real worker through it, and a write made while the broker is away
is published by the sweep once it is back."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from kombu import Connection

from tasks import outbox
from tests.conftest import RUN_ID, ScimClient, make_org
from tests.fixtures_worker import free_port, make_worker_app, wait_until
from tests.integration.worker_helpers import (
    all_jobs_settled,
    jobs_of,
    license_counts,
    person,
    set_active,
)

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
QUEUE = f"wt-{RUN_ID}-amqp"


@pytest.fixture(scope="module")
def amqp_env(worker_env: dict[str, str]) -> Iterator[dict[str, str]]:
    try:
        with Connection(AMQP_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # any failure to reach it
        pytest.skip(f"no RabbitMQ at {AMQP_URL}: {exc}")
    yield {**worker_env, "CELERY_BROKER_URL": AMQP_URL, "WORKTEAM_CELERY_QUEUE": QUEUE}
    with Connection(AMQP_URL) as conn:  # the queues Celery declared (durable) go with the run
        channel = conn.channel()
        for name in (QUEUE, f"{QUEUE}.mail"):
            channel.queue_delete(name)


def test_follow_ups_go_through_rabbitmq(amqp_env, start_worker, smtp_server) -> None:
    app = make_worker_app(amqp_env)
    assert app.extensions["celery"].conf.broker_url.startswith("amqp://")
    start_worker(env=amqp_env)
    scim = ScimClient(app.test_client(), make_org(app, seats=1))
    first, second = person(scim, "rabbit-a"), person(scim, "rabbit-b")
    # The license check (published with a countdown) gave the one seat, its welcome went out.
    wait_until(lambda: license_counts(app, scim.org.id) == {"licensed": 1, "unlicensed": 1})
    wait_until(lambda: smtp_server.to(first["userName"]))
    # A deactivation frees the seat: the next check gives it to the waiting user.
    set_active(scim, first["id"], False)
    wait_until(lambda: smtp_server.to(second["userName"]))
    wait_until(lambda: all_jobs_settled(app, scim.org.id))
    app.extensions["db.engine"].dispose()


def test_a_write_while_rabbitmq_is_unreachable_is_published_later(amqp_env, start_worker,
                                                                   smtp_server) -> None:
    """The web's broker refuses connections (a port nobody listens on): the create is answered
    at once and its jobs stay pending; the worker's sweep publishes them through RabbitMQ."""
    start_worker(env={**amqp_env, "WORKTEAM_REPUBLISH_AFTER_SECONDS": "1"}, concurrency=1,
                 beat=True)
    app = make_worker_app({**amqp_env,
                           "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}//"})
    try:
        outbox.reset_broker_backoff()
        scim = ScimClient(app.test_client(), make_org(app, seats=10))
        started = time.monotonic()
        user = person(scim, "rabbit-away")
        assert time.monotonic() - started < 1.0
        assert {j.state for j in jobs_of(app, scim.org.id)} == {"pending"}
        wait_until(lambda: smtp_server.to(user["userName"]))
        wait_until(lambda: all_jobs_settled(app, scim.org.id))
    finally:
        app.extensions["db.engine"].dispose()
