"""/healthz, /readyz and /metrics outside the SCIM prefix; JSON log lines with request id,
organization, route, status and duration; Celery task lines with task id and job id."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid

import pytest
from sqlalchemy import select

from models.outbox import Job
from tests.conftest import ScimClient, app_on, make_org, scratch_database
from tests.fixtures_worker import free_port, wait_until


@pytest.fixture
def json_log():
    """What the service's own JSON log handler writes during the test."""
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_workteam", False))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def _json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_names_what_is_missing(app_env):
    from web import create_app

    port = free_port()
    env = {**app_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0",
           "WORKTEAM_RATE_LIMIT_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    broken = create_app({"ENV_OVERRIDES": env, "TESTING": True})
    try:
        response = broken.test_client().get("/readyz")
        assert response.status_code == 503
        checks = response.get_json()["checks"]
        assert checks["database"] == "ok" and checks["redis"].startswith("unavailable")
        assert broken.test_client().get("/healthz").status_code == 200
    finally:
        broken.extensions["db.engine"].dispose()


def _samples(text: str, name: str) -> list[tuple[dict, float]]:
    out = []
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
            out.append((labels, float(match.group(2))))
    return out


def test_metrics_count_requests_by_route_status_and_org(client, app):
    scim = ScimClient(client, make_org(app))
    scim.create_user()
    for _ in range(3):
        scim.get("/Users")
    scim.get(f"/Users/{uuid.uuid4()}")
    client.get(f"/scim/v2/{uuid.uuid4()}/no/such/{uuid.uuid4()}")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    org = str(scim.org.id)
    counts = {
        (s["route"], s["method"], s["status"]): v
        for s, v in _samples(text, "workteam_http_requests_total")
        if s["org"] == org
    }
    assert counts[("/scim/v2/<org_id>/Users", "GET", "200")] == 3
    assert counts[("/scim/v2/<org_id>/Users", "POST", "201")] == 1
    assert counts[("/scim/v2/<org_id>/Users/<user_id>", "GET", "404")] == 1
    # Raw paths never become label values (unbounded cardinality).
    assert "/no/such/" not in text
    assert _samples(text, "workteam_http_request_duration_seconds_bucket")
    assert _samples(text, "workteam_metrics_database_up") == [({}, 1.0)]
    for family in ("workteam_jobs", "workteam_outbox_oldest_pending_seconds",
                   "workteam_users_by_license_state", "workteam_users_by_manager_state"):
        assert f"# TYPE {family} gauge" in text, family
    assert any(s["state"] == "pending" for s, _ in _samples(text, "workteam_jobs"))


@pytest.fixture
def own_app():
    """The app on a database of its own: the gauges count every organization, so another
    test's rows (or its background jobs still running) must not be in the comparison."""
    from models import migrate

    with scratch_database("workteam_gauges") as url:
        migrate.upgrade(url)
        app = app_on(url)
        yield app
        app.extensions["db.engine"].dispose()


def test_metrics_database_gauges_agree_with_counting_every_row(own_app):
    """The gauges read the tally and partial indexes, not every user or job: they must still
    say what a GROUP BY over every row says (all organizations of the database)."""
    from sqlalchemy import text

    from models import licensing
    from web.metrics import DatabaseCollector

    app = own_app
    scim = ScimClient(app.test_client(), make_org(app, seats=1))
    ids = [scim.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                "userName": f"gauge{n}@example.com"}).get_json()["id"]
           for n in range(4)]
    scim.patch(f"/Users/{ids[3]}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}]})
    engine = app.extensions["db.engine"]
    with app.extensions["db.sessions"]() as session:
        licensing.reconcile(session, scim.org.id)  # one licensed, two waiting, one none
        session.execute(text("UPDATE users SET manager_state = 'invalid' WHERE id = :id"),
                        {"id": ids[0]})
        session.execute(text("UPDATE users SET manager_state = 'pending' WHERE id = :id"),
                        {"id": ids[1]})
        session.execute(text(  # two of its jobs
            "UPDATE jobs SET state = CASE WHEN id = j.first THEN 'failed' ELSE 'running' END "
            "FROM (SELECT min(id) AS first, max(id) AS last FROM jobs WHERE org_id = :org) j "
            "WHERE jobs.id IN (j.first, j.last)"), {"org": scim.org.id})
        session.commit()
    counts = DatabaseCollector(engine, 0)._counts()
    with engine.connect() as conn:
        by_license = dict(conn.execute(text(
            "SELECT license_state, count(*) FROM users GROUP BY license_state")).all())
        by_manager = dict(conn.execute(text(
            "SELECT manager_state, count(*) FROM users GROUP BY manager_state")).all())
        by_job = {tuple(row[:2]): row[2] for row in conn.execute(text(
            "SELECT kind, state, count(*) FROM jobs "
            "WHERE state IN ('pending', 'running', 'failed') GROUP BY kind, state"))}
    assert {state for _, state in by_job} >= {"failed", "running"}
    assert {tuple(row[:2]): row[2] for row in counts["jobs"]} == by_job
    assert by_license == {"licensed": 1, "unlicensed": 2, "none": 1}
    assert by_manager == {"invalid": 1, "pending": 1, "none": 2}
    assert dict(counts["license"]) == {state: by_license.get(state, 0)
                                       for state in ("licensed", "unlicensed", "none")}
    assert dict(counts["manager"]) == {state: by_manager.get(state, 0)
                                       for state in ("pending", "invalid")}


def test_metrics_token(app_env):
    from web import create_app

    guarded = create_app({"ENV_OVERRIDES": {**app_env, "WORKTEAM_METRICS_TOKEN": "m-secret"},
                          "TESTING": True})
    try:
        c = guarded.test_client()
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = c.get("/metrics", headers={"Authorization": "Bearer m-secret"})
        assert ok.status_code == 200 and b"workteam_http_requests_total" in ok.data
    finally:
        guarded.extensions["db.engine"].dispose()


def test_request_log_lines(client, app, json_log):
    scim = ScimClient(client, make_org(app))
    response = scim.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                    "userName": "logged@example.com"},
                         headers={"X-Request-Id": "req-123-abc",
                                  "User-Agent": "Okta SCIM Client 1.0.0"})
    assert response.headers["X-Request-Id"] == "req-123-abc"
    generated = scim.get("/Users", headers={"X-Request-Id": "bad id; \"quoted\" " + "x" * 100})
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-Id"])
    lines = _json_lines(json_log.getvalue())
    ours = [line for line in lines if line.get("request_id") == "req-123-abc"
            and line.get("message") == "request"]
    assert len(ours) == 1, lines[-5:]
    line = ours[0]
    assert line["org_id"] == str(scim.org.id)
    assert line["route"] == "/scim/v2/<org_id>/Users"
    assert line["status"] == 201 and line["method"] == "POST"
    assert isinstance(line["duration_ms"], float)
    assert line["user_agent"] == "Okta SCIM Client 1.0.0"
    assert line["remote_addr"] == "127.0.0.1"
    assert {"asctime", "levelname", "name"} <= set(line)


def test_celery_task_log_context(app, json_log):
    from celery import signals

    task = app.extensions["celery"].tasks.get("tasks.outbox.sweep")
    signals.task_prerun.send(sender=task, task_id="t-1", task=task, args=(42,), kwargs={})
    try:
        logging.getLogger("workteam.test").warning("inside a task")
    finally:
        signals.task_postrun.send(sender=task, task_id="t-1", task=task)
    logging.getLogger("workteam.test").warning("outside")
    lines = [x for x in _json_lines(json_log.getvalue()) if x.get("name") == "workteam.test"]
    assert lines[0]["task_id"] == "t-1" and lines[0]["job_id"] == 42
    assert "task_id" not in lines[1]


def test_worker_logs_json_with_task_and_job_ids(worker, worker_app):
    scim = ScimClient(worker_app.test_client(), make_org(worker_app))
    scim.create_user()
    with worker_app.extensions["db.sessions"]() as session:
        job_ids = set(session.scalars(select(Job.id).where(Job.org_id == scim.org.id)))
    assert job_ids

    def logged():
        lines = _json_lines(worker.log())
        return [x for x in lines if x.get("job_id") in job_ids and x.get("task_id")]

    lines = wait_until(logged, timeout=30)
    assert all({"asctime", "levelname", "name", "message", "task"} <= set(x) for x in lines)
