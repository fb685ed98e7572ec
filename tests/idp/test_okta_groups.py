"""The requests Okta Group Push sends, replayed in order (reference §2, O9-O13).

Sources: Okta SCIM 2.0 reference (developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20)
and the Okta "SCIM 2.0 SPEC Test" suite ("Verify Groups endpoint": GET /Groups within 600 ms).
Member ids are the ids our service returned for the users (Okta stores and sends those).
"""

from __future__ import annotations

import json
import time

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OKTA_HEADERS = {
    "User-Agent": "Okta SCIM Client 1.0.0",
    "Accept": "application/scim+json",
    "Content-Type": "application/scim+json; charset=utf-8",
}


def okta(scim, method, path, body=None):
    data = json.dumps(body) if body is not None else None
    return scim.request(method, path, data=data, headers=dict(OKTA_HEADERS))


def members(scim, group_id):
    got = okta(scim, "GET", f"/Groups/{group_id}")
    assert got.status_code == 200
    return [m["value"] for m in got.get_json().get("members", [])]


def test_okta_group_push_conversation(scim):
    users = [scim.create_user(f"okta.user{i}@okta.local")["id"] for i in range(4)]

    # O10 spec test "Verify Groups endpoint": 200 within 600 ms, even before any group exists
    started = time.perf_counter()
    r = okta(scim, "GET", "/Groups?startIndex=1&count=100")
    assert r.status_code == 200 and time.perf_counter() - started < 0.6
    assert r.get_json()["schemas"] == [LIST] and r.get_json()["totalResults"] == 0

    # O9 Group Push create: groups are created empty
    r = okta(scim, "POST", "/Groups",
             {"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []})
    assert r.status_code == 201, r.get_json()
    group = r.get_json()
    gid = group["id"]
    assert group["displayName"] == "Test SCIMv2"
    assert r.headers["Location"].endswith(f"/Groups/{gid}")

    # O12 add of many members
    r = okta(scim, "PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members",
         "value": [{"value": u, "display": f"okta.user{i}@okta.local"}
                   for i, u in enumerate(users[:3])]}]})
    assert r.status_code == 200, r.get_json()
    assert "members" not in r.get_json()  # "members may be null"
    assert members(scim, gid) == users[:3]

    # O11 rename, sent with every membership update: path-less replace carrying id
    r = okta(scim, "PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 renamed"}}]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["displayName"] == "Test SCIMv2 renamed"

    # O12 remove one member by filter, add another, in one PATCH
    r = okta(scim, "PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": f'members[value eq "{users[0]}"]'},
        {"op": "add", "path": "members",
         "value": [{"value": users[3], "display": "okta.user3@okta.local"}]}]})
    assert r.status_code == 200
    assert members(scim, gid) == users[1:]

    # O12 full push: replace of all members
    r = okta(scim, "PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "members", "value": [{"value": users[0]}, {"value": users[2]}]}]})
    assert r.status_code == 200
    assert sorted(members(scim, gid)) == sorted([users[0], users[2]])

    # the user's read-only groups attribute reflects the push
    user = okta(scim, "GET", f"/Users/{users[0]}").get_json()
    assert [g["display"] for g in user["groups"]] == ["Test SCIMv2 renamed"]

    # O10 import: list and read
    listed = okta(scim, "GET", "/Groups?startIndex=1&count=100").get_json()
    assert listed["totalResults"] == 1 and isinstance(listed["itemsPerPage"], int)
    assert listed["Resources"][0]["id"] == gid
    assert {m["value"] for m in listed["Resources"][0]["members"]} == {users[0], users[2]}
    # Okta's lookup before push
    found = okta(scim, "GET", '/Groups?filter=displayName eq "test scimv2 renamed"').get_json()
    assert found["totalResults"] == 1

    # AIW apps rename with PUT (members included)
    r = okta(scim, "PUT", f"/Groups/{gid}", {"schemas": [GROUP], "id": gid,
                                            "displayName": "AIW name",
                                            "members": [{"value": users[1]}]})
    assert r.status_code == 200
    assert members(scim, gid) == [users[1]]

    # O13 unlink with "Delete the group in the target app"
    assert okta(scim, "DELETE", f"/Groups/{gid}").status_code == 204
    assert okta(scim, "GET", f"/Groups/{gid}").status_code == 404
    assert "groups" not in okta(scim, "GET", f"/Users/{users[1]}").get_json()


def test_okta_duplicate_push_is_409(scim):
    body = {"schemas": [GROUP], "displayName": "Dup", "members": []}
    assert okta(scim, "POST", "/Groups", body).status_code == 201
    r = okta(scim, "POST", "/Groups", body)
    assert r.status_code == 409 and r.get_json()["scimType"] == "uniqueness"
