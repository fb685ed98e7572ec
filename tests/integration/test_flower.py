"""Flower, started against the test broker as the Procfile starts it (basic auth from
FLOWER_BASIC_AUTH), shows a finished task by its readable name, with the job id as its only
argument. The worker runs without -E, as the Procfile's: Flower turns its task events on
(with --enable_events=False this test fails)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys

import pytest

from models.jobs import KIND_MANAGERS_ORG
from tests.conftest import ScimClient, make_org
from tests.fixtures_worker import ROOT, free_port, wait_until
from tests.integration.worker_helpers import all_jobs_settled, jobs_of, person

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150), pytest.mark.usefixtures("worker")]
AUTH = "ops:flower-test-password"


def _get(port: int, path: str, auth: str | None = AUTH) -> tuple[int, bytes]:
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


def test_flower_shows_a_finished_task(worker_env, worker_app, tmp_path) -> None:
    port = free_port()
    env = {**os.environ, **worker_env, "FLOWER_BASIC_AUTH": AUTH}
    log = open(tmp_path / "flower.log", "wb")
    # The Procfile's flower line, on a free port.
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks.celery_app", "flower",
         "--address=127.0.0.1", f"--port={port}", f"--basic-auth={env['FLOWER_BASIC_AUTH']}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_until(lambda: _get(port, "/healthcheck")[0] == 200, timeout=30)
        assert _get(port, "/api/tasks", auth=None)[0] == 401
        scim = ScimClient(worker_app.test_client(), make_org(worker_app))
        # Flower sees only the task events sent after its event receiver started, which its
        # healthcheck does not wait for: under load the first task may come too early, so
        # provision another user (another task) until one is shown.
        task = None
        for attempt in range(4):
            user = person(scim, f"flower{attempt}", displayName="Shown Nowhere")
            wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
            job = max((j for j in jobs_of(worker_app, scim.org.id) if j.kind == KIND_MANAGERS_ORG),
                      key=lambda j: j.id)

            def shown(job_id: int = job.id) -> list[dict]:
                status, body = _get(
                    port, "/api/tasks?taskname=tasks.managers.resolve_org&limit=1000")
                tasks = json.loads(body) if status == 200 else {}
                return [t for t in tasks.values()
                        if t.get("args") in (f"[{job_id}]", f"({job_id},)")
                        and t.get("state") == "SUCCESS"]

            try:
                [task] = wait_until(shown, timeout=20, interval=0.5)
                break
            except AssertionError:
                continue
        assert task is not None, "Flower never showed a finished tasks.managers.resolve_org"
        assert task["name"] == "tasks.managers.resolve_org"
        assert user["userName"] not in json.dumps(task) and "Shown Nowhere" not in json.dumps(task)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
