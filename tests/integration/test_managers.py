"""Manager resolution end to end: SCIM writes, the outbox, a real worker, reads."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from models.user import User
from tests.conftest import ScimClient, make_org
from tests.fixtures_worker import wait_until
from tests.integration.worker_helpers import all_jobs_settled

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
WT = "urn:workteam:params:scim:schemas:extension:workteam:2.0:User"

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def wscim(worker_app) -> ScimClient:
    return ScimClient(worker_app.test_client(), make_org(worker_app, seats=1000))


def new_user(scim: ScimClient, name: str, manager: str | None = None, **extra) -> dict:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT]}
    ent = dict(extra.pop("enterprise", {}))
    if manager is not None:
        ent["manager"] = {"value": manager}
    if ent:
        body[ENT] = ent
    return scim.create_user(f"{name}-{uuid.uuid4().hex[:6]}@example.com", **body, **extra)


def state(scim: ScimClient, user_id: str) -> dict:
    body = scim.get(f"/Users/{user_id}").get_json()
    return {**body[WT], "manager": body.get(ENT, {}).get("manager")}


def wait_state(scim: ScimClient, user_id: str, wanted: str, timeout: float = 20) -> dict:
    def reached() -> dict | None:
        s = state(scim, user_id)
        return s if s["managerState"] == wanted else None

    return wait_until(reached, timeout=timeout)


def test_manager_created_first_resolves_by_id(wscim: ScimClient) -> None:
    boss = new_user(wscim, "boss", displayName="The Boss")
    emp = new_user(wscim, "emp", manager=boss["id"])
    assert emp[ENT]["manager"] == {"value": boss["id"]}
    s = wait_state(wscim, emp["id"], "resolved")
    assert s["manager"] == {
        "value": boss["id"],
        "$ref": f"{wscim.org.base_url}/Users/{boss['id']}",
        "displayName": "The Boss",
    }


def test_report_created_first_is_pending_then_resolves(wscim: ScimClient) -> None:
    ext = f"ext-{uuid.uuid4().hex[:8]}"
    emp = new_user(wscim, "emp", manager=ext)
    # Pending at once; the worker adds why once it has looked.
    s = wait_until(lambda: (got := state(wscim, emp["id"])).get("managerStateReason") and got)
    assert s["managerState"] == "pending" and "$ref" not in s["manager"]
    boss = new_user(wscim, "boss", externalId=ext)
    s = wait_state(wscim, emp["id"], "resolved")
    assert s["manager"]["value"] == ext  # stored and returned exactly as sent
    assert s["manager"]["$ref"].endswith(boss["id"])


@pytest.mark.parametrize("key", ["externalId", "userName", "employeeNumber"])
def test_resolves_by_each_id_like_attribute(wscim: ScimClient, key: str) -> None:
    value = f"k-{uuid.uuid4().hex[:8]}"
    if key == "externalId":
        boss = new_user(wscim, "boss", externalId=value)
    elif key == "userName":
        value = f"Boss-{value}@Example.com"
        boss = wscim.create_user(value.lower())  # userName matches case-insensitively
    else:
        boss = new_user(wscim, "boss", enterprise={"employeeNumber": value})
    emp = new_user(wscim, "emp", manager=value)
    s = wait_state(wscim, emp["id"], "resolved")
    assert s["manager"]["$ref"].endswith(boss["id"]) and s["manager"]["value"] == value


def test_precedence_id_then_external_id_then_user_name(wscim: ScimClient) -> None:
    value = f"shared-{uuid.uuid4().hex[:8]}@example.com"
    by_name = wscim.create_user(value)
    by_ext = new_user(wscim, "ext", externalId=value)
    emp = new_user(wscim, "emp", manager=value)
    s = wait_state(wscim, emp["id"], "resolved")
    assert s["manager"]["$ref"].endswith(by_ext["id"]), (by_name["id"], by_ext["id"])


def test_other_organization_never_matches(wscim: ScimClient, worker_app) -> None:
    other = ScimClient(worker_app.test_client(), make_org(worker_app))
    ext = f"ext-{uuid.uuid4().hex[:8]}"
    new_user(other, "boss", externalId=ext)
    emp = new_user(wscim, "emp", manager=ext)
    wait_state(wscim, emp["id"], "pending")
    new_user(wscim, "boss", externalId=ext)
    wait_state(wscim, emp["id"], "resolved")


def test_self_reference_and_cycle_are_invalid(wscim: ScimClient) -> None:
    a_ext, b_ext, c_ext = (f"{n}-{uuid.uuid4().hex[:6]}" for n in "abc")
    me = new_user(wscim, "self", externalId=a_ext, manager=a_ext)
    s = wait_state(wscim, me["id"], "invalid")
    assert s["managerStateReason"].startswith("self-reference")
    b = new_user(wscim, "b", externalId=b_ext, manager=c_ext)
    c = new_user(wscim, "c", externalId=c_ext, manager=b_ext)
    states = wait_until(
        lambda: {
            state(wscim, b["id"])["managerState"], state(wscim, c["id"])["managerState"]
        } == {"resolved", "invalid"}
    )
    assert states
    invalid = next(u for u in (b, c) if state(wscim, u["id"])["managerState"] == "invalid")
    assert state(wscim, invalid["id"])["managerStateReason"].startswith("cycle")


def test_deleting_manager_returns_reports_to_pending(wscim: ScimClient) -> None:
    ext = f"ext-{uuid.uuid4().hex[:8]}"
    boss = new_user(wscim, "boss", externalId=ext)
    emp = new_user(wscim, "emp", manager=ext)
    wait_state(wscim, emp["id"], "resolved")
    assert wscim.delete(f"/Users/{boss['id']}").status_code == 204
    s = state(wscim, emp["id"])
    assert s["managerState"] == "pending" and "$ref" not in s["manager"]
    new_user(wscim, "boss2", externalId=ext)
    wait_state(wscim, emp["id"], "resolved")


def test_changed_manager_and_changed_id_like_values(wscim: ScimClient) -> None:
    ext1, ext2 = (f"e-{uuid.uuid4().hex[:8]}" for _ in range(2))
    boss = new_user(wscim, "boss", externalId=ext1)
    emp = new_user(wscim, "emp", manager=ext1)
    wait_state(wscim, emp["id"], "resolved")
    # The manager's externalId changes: the report's reference no longer names it.
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "path": "externalId", "value": ext2}]}
    assert wscim.patch(f"/Users/{boss['id']}", patch).status_code == 200
    wait_state(wscim, emp["id"], "pending")
    # The report's manager is changed to the new value: resolved again.
    patch["Operations"] = [{"op": "replace", "path": f"{ENT}:manager", "value": {"value": ext2}}]
    assert wscim.patch(f"/Users/{emp['id']}", patch).status_code == 200
    wait_state(wscim, emp["id"], "resolved")


def test_schema_lists_the_state_attributes(wscim: ScimClient) -> None:
    body = wscim.get(f"/Schemas/{WT}").get_json()
    names = {a["name"] for a in body["attributes"]}
    assert {"managerState", "licenseState"} <= names
    assert all(a["mutability"] == "readOnly" for a in body["attributes"])


def test_cli_lists_pending(wscim: ScimClient, worker_app) -> None:
    emp = new_user(wscim, "emp", manager="nobody-yet")
    wait_state(wscim, emp["id"], "pending")
    with worker_app.app_context():  # as `flask` itself pushes one
        result = worker_app.test_cli_runner().invoke(
            args=["managers", "pending", str(wscim.org.id)]
        )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["id"] for r in rows] == [emp["id"]]
    assert rows[0]["manager"] == "nobody-yet" and rows[0]["state"] == "pending"
    with worker_app.extensions["db.sessions"]() as session:
        user = session.scalar(select(User).where(User.id == uuid.UUID(emp["id"])))
        assert user is not None and user.manager_value == "nobody-yet"


def test_a_row_held_by_a_write_is_skipped_then_resolved(wscim: ScimClient, worker_app) -> None:
    """A resolution pass does not wait behind a write that holds a report's row: it resolves
    the others, and a new pass picks the held one up once the write is done."""
    from sqlalchemy import text

    held = new_user(wscim, "held", manager="boss-ext")
    free = new_user(wscim, "free", manager="boss-ext")
    assert state(wscim, held["id"])["managerState"] == "pending"
    # The creates' license checks first: a check that starts while the row is held waits for
    # it, holding the other users' rows (by design: it counts seats), and so would "free".
    wait_until(lambda: all_jobs_settled(worker_app, wscim.org.id), timeout=20)
    writer = worker_app.extensions["db.sessions"]()
    try:
        writer.execute(text("SELECT 1 FROM users WHERE id = :id FOR UPDATE"), {"id": held["id"]})
        new_user(wscim, "boss", externalId="boss-ext")
        wait_state(wscim, free["id"], "resolved")
        assert state(wscim, held["id"])["managerState"] == "pending"
    finally:
        writer.rollback()
        writer.close()
    wait_state(wscim, held["id"], "resolved")


def test_the_sweep_resolves_what_events_missed(wscim: ScimClient, worker_app) -> None:
    """The periodic sweep (beat: tasks.managers.sweep) re-resolves pending references: here a
    manager's externalId written straight into the database, which no job follows."""
    from sqlalchemy import text

    from tasks.managers import sweep_pending

    boss = new_user(wscim, "boss")
    emp = new_user(wscim, "emp", manager="sweep-ext")
    wait_until(lambda: all_jobs_settled(worker_app, wscim.org.id), timeout=20)
    assert state(wscim, emp["id"])["managerState"] == "pending"
    with worker_app.extensions["db.sessions"]() as session:
        session.execute(text("UPDATE users SET external_id = 'sweep-ext' WHERE id = :id"),
                        {"id": boss["id"]})
        session.commit()
    with worker_app.app_context():
        assert sweep_pending() >= 1
    assert state(wscim, emp["id"])["managerState"] == "resolved"
    assert state(wscim, emp["id"])["manager"]["value"] == "sweep-ext"
