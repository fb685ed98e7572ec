"""Pending members: a member named before its user exists is kept, and linked when the user
arrives (the data-layer function, the job's handler, and end to end with a real worker)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from models import memberships
from models.outbox import Job
from models.user import User
from tests.conftest import ScimClient, make_org
from tests.fixtures_worker import wait_until

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def new_group(scim, members):
    r = scim.post("/Groups", {"schemas": [GROUP], "displayName": f"p-{uuid.uuid4().hex[:8]}",
                              "members": [{"value": m} for m in members]})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def members(scim, gid):
    return scim.get(f"/Groups/{gid}").get_json()["members"]


def test_resolution_by_external_id_links_and_bumps_version(scim, app):
    group = new_group(scim, ["late-ext-1", "never-arrives"])
    assert all("$ref" not in m for m in group["members"])
    user = scim.create_user(externalId="late-ext-1", displayName="Late")
    with app.extensions["db.sessions"]() as session:
        # Written by the user's create statement (models/store.py): ids only, no personal data.
        jobs = session.scalars(select(Job).where(
            Job.subject_id == user["id"], Job.kind == memberships.RESOLVE_KIND)).all()
        assert len(jobs) == 1 and jobs[0].payload == {}
        assert jobs[0].dedup_key == f"{memberships.RESOLVE_KIND}:{user['id']}:1"
        session.rollback()
        # Run it here unless a worker of this run holds it or has run it (locked as run_job does).
        job = session.scalar(
            select(Job).where(Job.id == jobs[0].id).with_for_update(skip_locked=True))
        if job is not None and job.state == "pending":
            from tasks.groups import handle

            handle(session, job)
            assert job.result == {"linked": 1}
            job.state = "done"
        session.commit()

    def linked_members():
        got = scim.get(f"/Groups/{group['id']}")
        first = got.get_json()["members"][0]
        return (got, got.get_json()["members"]) if "$ref" in first else None

    got, (linked, pending) = wait_until(linked_members, timeout=20)
    assert linked == {"value": "late-ext-1", "type": "User", "display": "Late",
                      "$ref": f"{scim.org.base_url}/Users/{user['id']}"}
    assert pending == {"value": "never-arrives"}
    assert got.headers["ETag"] != group["meta"]["version"]
    assert [g["value"] for g in scim.get(f"/Users/{user['id']}").get_json()["groups"]] == [
        group["id"]]
    with app.extensions["db.sessions"]() as session:  # idempotent
        assert memberships.resolve_pending_members(
            session, session.get(User, uuid.UUID(user["id"]))) == 0


def _resolve_jobs(app, user_id: str) -> list[Job]:
    with app.extensions["db.sessions"]() as session:
        return list(session.scalars(select(Job).where(
            Job.subject_id == user_id, Job.kind == memberships.RESOLVE_KIND)))


def test_no_job_when_nothing_is_pending(scim, app):
    user = scim.create_user(externalId="nobody-waits")
    assert _resolve_jobs(app, user["id"]) == []
    assert scim.delete(f"/Users/{user['id']}").status_code == 204
    assert _resolve_jobs(app, user["id"]) == []


def test_an_external_id_change_that_a_pending_member_names_writes_the_job(scim, app):
    """The update's statement writes the resolve job when the new externalId is pending; an
    update that leaves it as it was writes none."""
    new_group(scim, ["arrives-later"])
    user = scim.create_user("renamed@example.com", externalId="first-ext")
    assert _resolve_jobs(app, user["id"]) == []
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "renamed@example.com", "externalId": "first-ext", "title": "x"}
    assert scim.put(f"/Users/{user['id']}", body).status_code == 200
    assert _resolve_jobs(app, user["id"]) == []
    changed = scim.put(f"/Users/{user['id']}", {**body, "externalId": "arrives-later"})
    assert changed.status_code == 200
    (job,) = _resolve_jobs(app, user["id"])
    assert job.dedup_key == f"{memberships.RESOLVE_KIND}:{user['id']}:3"


def test_ambiguous_external_id_links_no_one(scim, app):
    group = new_group(scim, ["twin"])
    a = scim.create_user(externalId="twin")
    scim.create_user(externalId="twin")
    with app.extensions["db.sessions"]() as session:
        assert memberships.resolve_pending_members(
            session, session.get(User, uuid.UUID(a["id"]))) == 0
    assert "$ref" not in members(scim, group["id"])[0]
    # and a group write naming an ambiguous externalId keeps it pending too
    other = new_group(scim, ["twin"])
    assert "$ref" not in other["members"][0]


def test_pending_values_are_per_organization(scim, app):
    """A pending value in one organization never links a user of another."""
    group = new_group(scim, ["shared-ext"])
    other = ScimClient(scim.client, make_org(scim.org.app))
    theirs = other.create_user(externalId="shared-ext")
    assert _resolve_jobs(app, theirs["id"]) == []
    with app.extensions["db.sessions"]() as session:
        row = session.get(User, uuid.UUID(theirs["id"]))
        assert memberships.resolve_pending_members(session, row) == 0
    assert "$ref" not in members(scim, group["id"])[0]


@pytest.mark.usefixtures("worker")
def test_end_to_end_with_worker(worker_app):
    from tasks.outbox import TASKS

    if memberships.RESOLVE_KIND not in TASKS:
        pytest.skip("groups.resolve_members is not in tasks.outbox.TASKS yet")
    wscim = ScimClient(worker_app.test_client(), make_org(worker_app, seats=1000))
    group = new_group(wscim, ["e2e-ext"])
    user = wscim.create_user(externalId="e2e-ext")

    def linked():
        return "$ref" in members(wscim, group["id"])[0]

    wait_until(linked, timeout=20)
    with worker_app.extensions["db.sessions"]() as session:
        kinds = session.scalars(select(Job.kind).where(Job.subject_id == user["id"])).all()
        assert memberships.RESOLVE_KIND in kinds
