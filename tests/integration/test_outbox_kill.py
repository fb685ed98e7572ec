"""A worker SIGKILLed in the middle of sending a mail: the task runs again, completes, and the
mail arrives once. The SMTP server holds the RCPT command, so the kill lands mid-task, before
any message data is sent."""

from __future__ import annotations

import os
import signal

import pytest

from models.jobs import KIND_MAIL
from tests.conftest import RUN_ID, ScimClient, make_org
from tests.fixtures_worker import make_worker_app, wait_until
from tests.integration.worker_helpers import all_jobs_settled, jobs_of, person

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _held_mid_send(smtp_server, scim: ScimClient) -> dict:
    smtp_server.rcpt_held.clear()
    smtp_server.hold_rcpt.set()
    user = person(scim, "killed")
    assert smtp_server.rcpt_held.wait(timeout=30), "the mail task never reached the server"
    return user


def test_whole_worker_killed_then_sweep_redelivers(worker_env, smtp_server, start_worker):
    env = {**worker_env, "WORKTEAM_CELERY_QUEUE": f"wt-{RUN_ID}-kill-all",
           "WORKTEAM_REPUBLISH_AFTER_SECONDS": "2"}
    app = make_worker_app(env)
    first = start_worker(env=env, concurrency=1)
    try:
        scim = ScimClient(app.test_client(), make_org(app, seats=10))
        try:
            user = _held_mid_send(smtp_server, scim)
            first.kill()  # main process and pool: no goodbye, message left unacknowledged
        finally:
            smtp_server.hold_rcpt.clear()
        wait_until(lambda: jobs_of(app, scim.org.id, KIND_MAIL)[0].state == "pending")
        # A new worker with beat: the outbox sweep republishes the job left pending.
        start_worker(env=env, concurrency=1, beat=True)
        wait_until(lambda: smtp_server.to(user["userName"]), timeout=60)
        wait_until(lambda: all_jobs_settled(app, scim.org.id), timeout=30)
        assert len(smtp_server.to(user["userName"])) == 1
        assert jobs_of(app, scim.org.id, KIND_MAIL)[0].state == "done"
    finally:
        app.extensions["db.engine"].dispose()


def test_pool_process_killed_task_requeued(worker_env, smtp_server, start_worker):
    """Only the process running the task dies: task_reject_on_worker_lost puts the message
    back and the worker's new pool process runs it (no sweep involved). The Procfile runs a
    threads pool; a prefork pool (``--pool prefork``) is the deployment this protects."""
    env = {**worker_env, "WORKTEAM_CELERY_QUEUE": f"wt-{RUN_ID}-kill-child",
           "WORKTEAM_REPUBLISH_AFTER_SECONDS": "3600"}
    app = make_worker_app(env)
    w = start_worker(env=env, concurrency=1, pool="prefork")
    try:
        scim = ScimClient(app.test_client(), make_org(app, seats=10))
        try:
            user = _held_mid_send(smtp_server, scim)
            [child] = w.children()
            os.kill(child, signal.SIGKILL)
        finally:
            smtp_server.hold_rcpt.clear()
        wait_until(lambda: smtp_server.to(user["userName"]), timeout=60)
        wait_until(lambda: all_jobs_settled(app, scim.org.id), timeout=30)
        assert len(smtp_server.to(user["userName"])) == 1
        assert "WorkerLostError" in w.log()
    finally:
        app.extensions["db.engine"].dispose()
