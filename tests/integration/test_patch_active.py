"""A PATCH that only sets ``active`` (Entra's and Okta's deactivation) is one statement with no
read before it (models/store.py: set_user_active). It must answer and write exactly what the
general read-patch-write path does: the same resource, version and ETag, the same jobs."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from models.outbox import Job
from models.user import User

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ENTRA_OFF = {"schemas": [PATCH_OP],
             "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
OKTA_ON = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": True}}]}


def _with_manager_and_group(app, scim, name: str) -> dict:  # type: ignore[no-untyped-def]
    boss = scim.create_user(f"boss-{name}", displayName=f"Boss of {name}")
    user = scim.create_user(name, displayName=name.title(), emails=[
        {"value": name, "type": "work", "primary": True}],
        **{ENTERPRISE: {"manager": {"value": boss["id"]}, "department": "Eng"}})
    with app.extensions["db.sessions"]() as session:  # resolved, as the worker would
        session.execute(update(User).where(User.id == user["id"])
                        .values(manager_id=boss["id"], manager_state="resolved"))
        session.commit()
    group = scim.post("/Groups", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": f"Team {name}", "members": [{"value": user["id"]}]})
    assert group.status_code == 201
    return user


def test_the_response_is_the_user_as_stored(app, scim):
    user = _with_manager_and_group(app, scim, "ada@example.com")
    off = scim.patch(f"/Users/{user['id']}", ENTRA_OFF)
    assert off.status_code == 200 and off.headers["ETag"] == 'W/"2"'
    got = scim.get(f"/Users/{user['id']}")
    assert off.get_json() == got.get_json() and got.headers["ETag"] == 'W/"2"'
    doc = off.get_json()
    assert doc["active"] is False and doc["meta"]["version"] == 'W/"2"'
    assert doc["meta"]["lastModified"] > user["meta"]["lastModified"]
    assert [g["display"] for g in doc["groups"]] == ["Team ada@example.com"]
    assert doc[ENTERPRISE]["manager"]["displayName"] == "Boss of ada@example.com"

    on = scim.patch(f"/Users/{user['id']}", OKTA_ON)
    assert on.status_code == 200 and on.get_json()["active"] is True
    assert on.headers["ETag"] == 'W/"3"'
    assert on.get_json() == scim.get(f"/Users/{user['id']}").get_json()


def test_it_writes_the_jobs_the_general_path_writes(app, scim):
    fast = scim.create_user("fast@example.com")
    general = scim.create_user("general@example.com")
    assert scim.patch(f"/Users/{fast['id']}", ENTRA_OFF).status_code == 200
    # If-Match takes the general path (a read, the patch applied, one write).
    slow = scim.patch(f"/Users/{general['id']}", ENTRA_OFF, headers={"If-Match": 'W/"1"'})
    assert slow.status_code == 200 and slow.headers["ETag"] == 'W/"2"'

    def jobs_of(user_id: str) -> set[tuple]:  # type: ignore[no-untyped-def]
        with app.extensions["db.sessions"]() as session:
            rows = session.execute(select(Job.kind, Job.dedup_key, Job.payload, Job.subject_id)
                                   .where(Job.subject_id == user_id)).all()
        return {(k, key.replace(user_id, "U"), str({**p, "user_id": "U"}), s == user_id)
                for k, key, p, s in rows}

    assert jobs_of(fast["id"]) == jobs_of(general["id"])
    assert ("mail.deactivated", "mail.deactivated:U:2", str({"user_id": "U", "version": 2}),
            True) in jobs_of(fast["id"])
    with app.extensions["db.sessions"]() as session:
        org_kinds = set(session.scalars(select(Job.kind).where(
            Job.org_id == scim.org.id, Job.subject_id.is_(None))))
    assert {"licenses.check", "mail.deactivated_org"} <= org_kinds


def test_a_user_already_in_that_state_is_not_written(app, scim):
    user = scim.create_user("same@example.com", active=False)
    with app.extensions["db.sessions"]() as session:
        before = set(session.scalars(select(Job.id).where(Job.org_id == scim.org.id)))
    again = scim.patch(f"/Users/{user['id']}", ENTRA_OFF)
    assert again.status_code == 200 and again.headers["ETag"] == 'W/"1"'
    assert again.get_json() == scim.get(f"/Users/{user['id']}").get_json()
    assert again.get_json()["meta"]["lastModified"] == user["meta"]["lastModified"]
    with app.extensions["db.sessions"]() as session:
        after = set(session.scalars(select(Job.id).where(Job.org_id == scim.org.id)))
    assert after == before


def test_activating_a_user_stored_without_active_stores_the_attribute(app, scim):
    """Created without ``active`` (true by default): activating writes the attribute, as the
    general path does, with a new version and no job."""
    user = scim.create_user("implicit@example.com")
    with app.extensions["db.sessions"]() as session:
        assert "active" not in session.get(User, uuid.UUID(user["id"])).attrs
    on = scim.patch(f"/Users/{user['id']}", OKTA_ON)
    assert on.status_code == 200 and on.get_json()["active"] is True
    with app.extensions["db.sessions"]() as session:
        row = session.get(User, uuid.UUID(user["id"]))
        assert row.attrs["active"] is True and row.active is True
        version = row.version
        kinds = set(session.scalars(select(Job.kind).where(Job.subject_id == user["id"])))
    assert on.headers["ETag"] == f'W/"{version}"' and not kinds & {"mail.deactivated"}


def test_the_column_and_the_attribute_agree(app, scim):
    user = scim.create_user("cols@example.com")  # created without "active": true by default
    assert scim.patch(f"/Users/{user['id']}", ENTRA_OFF).status_code == 200
    with app.extensions["db.sessions"]() as session:
        row = session.get(User, uuid.UUID(user["id"]))
        assert row.active is False and row.attrs["active"] is False and row.version == 2
    found = scim.get("/Users", query_string={"filter": "active eq false"}).get_json()
    assert [u["id"] for u in found["Resources"]] == [user["id"]]


def test_missing_users_and_preconditions_answer_as_the_general_path(scim):
    missing = scim.patch(f"/Users/{uuid.uuid4()}", ENTRA_OFF)
    assert missing.status_code == 404 and missing.get_json()["status"] == "404"
    assert scim.patch("/Users/not-a-uuid", ENTRA_OFF).status_code == 404
    user = scim.create_user("pre@example.com")
    stale = scim.patch(f"/Users/{user['id']}", ENTRA_OFF, headers={"If-Match": 'W/"7"'})
    assert stale.status_code == 412
    bad = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active",
                                                  "value": "maybe"}]}
    refused = scim.patch(f"/Users/{user['id']}", bad)
    assert refused.status_code == 400 and refused.get_json()["scimType"] == "invalidValue"
    assert scim.get(f"/Users/{user['id']}").headers["ETag"] == 'W/"1"'


def test_the_response_honours_attributes(scim):
    user = scim.create_user("proj@example.com", displayName="Proj")
    off = scim.patch(f"/Users/{user['id']}?attributes=active", ENTRA_OFF)
    assert off.status_code == 200
    assert set(off.get_json()) == {"schemas", "id", "active"}
