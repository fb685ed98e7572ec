"""No password, token or request body in logs (web and worker), audit rows, outbox rows,
Celery messages (what Flower shows) or error details: the captured output is grepped."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from celery import signals
from sqlalchemy import select, text

from models.outbox import Job
from tests.conftest import ScimClient, make_org
from tests.fixtures_worker import wait_until

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


@pytest.fixture
def service_log():
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_workteam", False))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


@pytest.fixture
def published():
    messages: list[str] = []

    def record(body=None, headers=None, **_):  # type: ignore[no-untyped-def]
        messages.append(json.dumps({"body": body, "headers": headers}, default=str))

    signals.before_task_publish.connect(record, weak=False, dispatch_uid="secrets-test")
    yield messages
    signals.before_task_publish.disconnect(record, dispatch_uid="secrets-test")


def _secret(label: str) -> str:
    return f"Pw-{label}-{uuid.uuid4().hex}"


def test_secrets_appear_nowhere(worker, worker_app, service_log, published):
    org = make_org(worker_app)
    client = worker_app.test_client()
    scim = ScimClient(client, org)
    secrets = {name: _secret(name) for name in ("create", "patch", "put", "bulk", "bad", "long")}
    marker = f"body-marker-{uuid.uuid4().hex}"  # a value only ever sent in request bodies
    wrong_token = "wtscim_" + uuid.uuid4().hex
    details: list[str] = []

    user = scim.create_user(password=secrets["create"], nickName=marker)
    uid = user["id"]
    for response in [
        scim.patch(f"/Users/{uid}", {"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "password", "value": secrets["patch"]}]}),
        scim.put(f"/Users/{uid}", {"schemas": [USER], "userName": user["userName"],
                                   "password": secrets["put"], "nickName": marker}),
        scim.post("/Bulk", {"schemas": [BULK], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "b1",
             "data": {"schemas": [USER], "userName": f"bulk-{uuid.uuid4().hex[:6]}@x.example",
                      "password": secrets["bulk"]}}]}),
    ]:
        assert response.status_code in (200, 201), response.get_json()
        assert secrets["create"] not in response.get_data(as_text=True)
    for body in [
        {"schemas": [USER], "userName": "bad1@x.example", "password": [secrets["bad"]]},
        {"schemas": [USER], "userName": "bad2@x.example", "password": {"v": secrets["bad"]}},
        {"schemas": [USER], "userName": "bad3@x.example", "password": secrets["long"] * 200},
        {"schemas": [USER], "userName": 7, "password": secrets["bad"], "nickName": marker},
        {"schemas": [USER], "userName": "bad5@x.example", "password": secrets["bad"],
         "unknownThing": secrets["bad"]},
    ]:
        response = scim.post("/Users", body)
        assert response.status_code == 400, response.get_json()
        details.append(response.get_data(as_text=True))
    response = scim.patch(f"/Users/{uid}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "password", "value": [secrets["bad"]]}]})
    assert response.status_code == 400
    details.append(response.get_data(as_text=True))
    response = client.get(f"{org.base}/Users", headers={"Authorization": f"Bearer {wrong_token}"})
    assert response.status_code == 401
    details.append(response.get_data(as_text=True))
    assert "password" not in json.dumps(scim.get(f"/Users/{uid}").get_json())

    # Let the worker run every job this produced, so its log lines are in too.
    def jobs_settled():
        with worker_app.extensions["db.sessions"]() as session:
            states = session.scalars(select(Job.state).where(Job.org_id == org.id)).all()
        return states and all(s != "pending" and s != "running" for s in states)

    wait_until(jobs_settled, timeout=60)
    with worker_app.extensions["db.sessions"]() as session:
        rows = {}
        for table in ("audit_events", "jobs", "scim_tokens"):
            query = text(f"SELECT * FROM {table} WHERE org_id = :org")  # noqa: S608 (constants)
            result = session.execute(query, {"org": org.id})
            rows[table] = json.dumps([list(map(str, r)) for r in result])
    places = {
        "web log": service_log.getvalue(),
        "worker log": worker.log(),
        "celery messages": "\n".join(published),
        "error details": "\n".join(details),
        **rows,
    }
    assert "request" in places["web log"] and published and rows["audit_events"] != "[]"
    forbidden = {**secrets, "token": org.token, "wrong token": wrong_token}
    for place, content in places.items():
        for name, value in forbidden.items():
            assert value not in content, f"{name} found in {place}"
    for place in ("web log", "worker log", "audit_events", "error details"):
        assert marker not in places[place], f"a request body value found in {place}"
