"""A 5,000-member group: built by PATCH add in batches of 100 (as Okta and Entra push),
read without members and with them, shrunk and replaced; each step bounded in time."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import func, insert, select

from models.group import Membership
from models.store import user_columns
from models.user import User

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
N = 5000


def seed_users(app, org_id, n):
    """n users inserted in one statement (the SCIM create path is tested elsewhere)."""
    rows = []
    for i in range(n):
        attrs = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                 "userName": f"member{i}@scale.example"}
        rows.append({"id": uuid.uuid4(), "org_id": org_id, "attrs": attrs, **user_columns(attrs)})
    with app.extensions["db.sessions"]() as session:
        session.execute(insert(User), rows)
        session.commit()
    return [str(r["id"]) for r in rows]


def count_members(app, group_id):
    with app.extensions["db.sessions"]() as session:
        return session.scalar(
            select(func.count()).where(Membership.group_id == uuid.UUID(group_id)))


def test_five_thousand_members(scim, app):
    ids = seed_users(app, scim.org.id, N)
    r = scim.post("/Groups", {"schemas": [GROUP], "displayName": "Everyone", "members": []})
    gid = r.get_json()["id"]

    started = time.perf_counter()
    for start in range(0, N, 100):
        batch = ids[start:start + 100]
        r = scim.patch(f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": v} for v in batch]}]})
        assert r.status_code == 200
        assert len(r.data) < 2000  # no member list sent back
    add_seconds = time.perf_counter() - started
    assert count_members(app, gid) == N
    assert add_seconds < 30, add_seconds  # 50 PATCHes; measured ~2 s on the dev machine

    started = time.perf_counter()
    r = scim.get(f"/Groups/{gid}?excludedAttributes=members")
    assert r.status_code == 200 and "members" not in r.get_json()
    assert time.perf_counter() - started < 1

    body = scim.get(f"/Groups/{gid}").get_json()
    assert [m["value"] for m in body["members"]] == ids  # insertion order
    assert body["members"][0]["display"] == "member0@scale.example"

    # the Entra form: remove a value list; only those go
    r = scim.patch(f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "Remove", "path": "members", "value": [{"value": v} for v in ids[:100]]}]})
    assert r.status_code == 200
    assert count_members(app, gid) == N - 100

    # a user's groups, and the list of members paged the documented way
    user = scim.get(f"/Users/{ids[-1]}").get_json()
    assert [g["value"] for g in user["groups"]] == [gid]
    page = scim.get(f'/Users?filter=groups.value eq "{gid}"&count=10').get_json()
    assert page["totalResults"] == N - 100 and len(page["Resources"]) == 10

    # replace of all members with a short list
    r = scim.patch(f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "members", "value": [{"value": v} for v in ids[:3]]}]})
    assert r.status_code == 200
    assert count_members(app, gid) == 3
