"""/Groups: CRUD, members, listing, projection, the user's groups attribute, cross-org ids."""

from __future__ import annotations

import uuid

from tests.conftest import ScimClient, make_org

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def new_group(scim, name=None, members=(), **extra):
    body = {
        "schemas": [GROUP],
        "displayName": name or f"team-{uuid.uuid4().hex[:8]}",
        "members": [{"value": m} for m in members],
        **extra,
    }
    response = scim.post("/Groups", body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def patch(scim, group_id, *ops, **kw):
    return scim.patch(f"/Groups/{group_id}", {"schemas": [PATCH], "Operations": list(ops)}, **kw)


def member_values(scim, group_id):
    got = scim.get(f"/Groups/{group_id}?attributes=members")
    assert got.status_code == 200, got.get_json()
    return [m["value"] for m in got.get_json().get("members", [])]


def test_create_read_members_display_and_ref(scim):
    alice = scim.create_user("alice@example.com", displayName="Alice A")
    bob = scim.create_user("bob@example.com")
    group = new_group(scim, "Engineering", [alice["id"], bob["id"]], externalId="ext-eng")
    assert group["displayName"] == "Engineering"
    assert group["externalId"] == "ext-eng"
    assert group["meta"]["resourceType"] == "Group"
    assert group["meta"]["location"].endswith(f"/Groups/{group['id']}")
    members = {m["value"]: m for m in group["members"]}
    assert members[alice["id"]]["display"] == "Alice A"
    assert members[bob["id"]]["display"] == "bob@example.com"
    assert members[alice["id"]]["$ref"].endswith(f"/Users/{alice['id']}")
    assert members[alice["id"]]["type"] == "User"
    got = scim.get(f"/Groups/{group['id']}")
    assert got.status_code == 200
    assert got.headers["ETag"] == group["meta"]["version"]
    assert [m["value"] for m in got.get_json()["members"]] == [alice["id"], bob["id"]]


def test_user_groups_attribute(scim):
    alice = scim.create_user()
    g1 = new_group(scim, "G one", [alice["id"]])
    g2 = new_group(scim, "G two", [alice["id"]])
    user = scim.get(f"/Users/{alice['id']}").get_json()
    assert [g["value"] for g in user["groups"]] == [g1["id"], g2["id"]]
    assert user["groups"][0]["display"] == "G one"
    assert user["groups"][0]["$ref"].endswith(f"/Groups/{g1['id']}")
    listed = scim.get("/Users?filter=" + f'groups.value eq "{g2["id"]}"').get_json()
    assert [u["id"] for u in listed["Resources"]] == [alice["id"]]
    assert listed["Resources"][0]["groups"][1]["display"] == "G two"
    # groups is readOnly: sent on PUT it is ignored
    put = scim.put(f"/Users/{alice['id']}", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": alice["userName"], "groups": [],
    })
    assert put.status_code == 200
    assert len(put.get_json()["groups"]) == 2


def test_display_name_unique_case_insensitively(scim):
    new_group(scim, "Sales")
    dup = scim.post("/Groups", {"schemas": [GROUP], "displayName": "SALES"})
    assert dup.status_code == 409
    assert dup.get_json()["scimType"] == "uniqueness"
    other = ScimClient(scim.client, make_org(scim.org.app))
    assert other.post("/Groups", {"schemas": [GROUP], "displayName": "Sales"}).status_code == 201


def test_missing_display_name_and_bad_members(scim):
    r = scim.post("/Groups", {"schemas": [GROUP], "members": []})
    assert r.status_code == 400 and r.get_json()["scimType"] == "invalidValue"
    r = scim.post(
        "/Groups", {"schemas": [GROUP], "displayName": "x", "members": [{"display": "y"}]}
    )
    assert r.status_code == 400 and r.get_json()["scimType"] == "invalidValue"
    r = scim.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                              "displayName": "x"})
    assert r.status_code == 400


def test_cross_org_member_ids_refused_and_not_linked(scim):
    other = ScimClient(scim.client, make_org(scim.org.app))
    stranger = other.create_user()
    foreign_group = other.post("/Groups", {"schemas": [GROUP], "displayName": "theirs"}).get_json()
    for value in (stranger["id"], foreign_group["id"], stranger["id"].upper()):
        r = scim.post("/Groups", {"schemas": [GROUP], "displayName": f"g-{value[:6]}",
                                  "members": [{"value": value}]})
        assert r.status_code == 400, r.get_json()
        body = r.get_json()
        assert body["scimType"] == "invalidValue"
        assert "not a user of this organization" in body["detail"]
        assert value not in body["detail"]
    group = new_group(scim)
    add = {"op": "add", "path": "members", "value": [{"value": stranger["id"]}]}
    r = patch(scim, group["id"], add)
    assert r.status_code == 400
    assert member_values(scim, group["id"]) == []
    r = scim.put(f"/Groups/{group['id']}", {"schemas": [GROUP], "displayName": group["displayName"],
                                            "members": [{"value": stranger["id"]}]})
    assert r.status_code == 400
    # the other org's user does not see our group
    assert "groups" not in other.get(f"/Users/{stranger['id']}").get_json()


def test_unknown_member_is_pending_reference(scim):
    missing = str(uuid.uuid4())
    group = new_group(scim, members=[missing, "ext-not-yet"])
    assert [m["value"] for m in group["members"]] == [missing, "ext-not-yet"]
    assert all("$ref" not in m for m in group["members"])


def test_member_by_external_id_links_existing_user(scim):
    user = scim.create_user(externalId="00ujl29u0le5T6Aj10h7")
    group = new_group(scim, members=["00ujl29u0le5T6Aj10h7"])
    assert group["members"][0]["$ref"].endswith(f"/Users/{user['id']}")
    # removal by our id works as well as by the value sent
    r = patch(scim, group["id"], {"op": "remove", "path": f'members[value eq "{user["id"]}"]'})
    assert r.status_code == 200
    assert member_values(scim, group["id"]) == []


def test_nested_group_member_and_self_membership(scim):
    inner = new_group(scim, "inner")
    outer = new_group(scim, "outer", [inner["id"]])
    assert outer["members"][0]["type"] == "Group"
    assert outer["members"][0]["display"] == "inner"
    self_add = {"op": "add", "path": "members", "value": [{"value": outer["id"]}]}
    r = patch(scim, outer["id"], self_add)
    assert r.status_code == 400


def test_put_replaces_members_and_keeps_them_when_absent(scim):
    a, b, c = (scim.create_user()["id"] for _ in range(3))
    group = new_group(scim, "put-team", [a, b])
    r = scim.put(f"/Groups/{group['id']}", {
        "schemas": [GROUP], "id": group["id"], "displayName": "put-team-2",
        "members": [{"value": b}, {"value": c}],
    })
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["displayName"] == "put-team-2"
    assert member_values(scim, group["id"]) == [b, c]
    r = scim.put(f"/Groups/{group['id']}", {"schemas": [GROUP], "displayName": "put-team-3"})
    assert r.status_code == 200
    assert member_values(scim, group["id"]) == [b, c]
    r = scim.put(
        f"/Groups/{group['id']}", {"schemas": [GROUP], "displayName": "put-team-3", "members": []}
    )
    assert member_values(scim, group["id"]) == []


def test_versions_etag_if_match_and_noop(scim):
    a = scim.create_user()["id"]
    group = new_group(scim)
    v1 = group["meta"]["version"]
    r = patch(scim, group["id"], {"op": "add", "path": "members", "value": [{"value": a}]})
    v2 = r.headers["ETag"]
    assert v2 != v1
    # adding an existing member is a no-op: same version
    r = patch(scim, group["id"], {"op": "add", "path": "members", "value": [{"value": a}]})
    assert r.headers["ETag"] == v2
    # removing a non-member: no-op, not an error
    r = patch(scim, group["id"], {"op": "remove", "path": 'members[value eq "nobody"]'})
    assert r.status_code == 200 and r.headers["ETag"] == v2
    r = patch(scim, group["id"], {"op": "replace", "path": "displayName", "value": "x"},
              headers={"If-Match": v1})
    assert r.status_code == 412
    assert scim.get(f"/Groups/{group['id']}", headers={"If-None-Match": v2}).status_code == 304
    assert scim.delete(f"/Groups/{group['id']}", headers={"If-Match": v1}).status_code == 412
    assert scim.delete(f"/Groups/{group['id']}", headers={"If-Match": v2}).status_code == 204
    assert scim.get(f"/Groups/{group['id']}").status_code == 404
    assert scim.get("/Groups/not-a-uuid").status_code == 404


def test_patch_response_has_no_members_unless_asked(scim):
    a = scim.create_user()["id"]
    group = new_group(scim)
    r = patch(scim, group["id"], {"op": "add", "path": "members", "value": [{"value": a}]})
    assert r.status_code == 200
    assert "members" not in r.get_json()
    assert r.get_json()["id"] == group["id"]
    rename = {"op": "replace", "path": "displayName", "value": "n"}
    r = scim.patch(f"/Groups/{group['id']}?attributes=members",
                   {"schemas": [PATCH], "Operations": [rename]})
    assert [m["value"] for m in r.get_json()["members"]] == [a]


def test_list_filter_sort_paging_projection(scim):
    a = scim.create_user()["id"]
    names = ["beta", "Alpha", "gamma"]
    made = {n: new_group(scim, n, [a] if n == "gamma" else []) for n in names}
    r = scim.get('/Groups?filter=displayName eq "ALPHA"&excludedAttributes=members')
    body = r.get_json()
    assert body["totalResults"] == 1 and body["Resources"][0]["id"] == made["Alpha"]["id"]
    assert "members" not in body["Resources"][0]
    body = scim.get("/Groups?sortBy=displayName&count=2").get_json()
    assert [g["displayName"] for g in body["Resources"]] == ["Alpha", "beta"]
    assert body["totalResults"] == 3 and body["itemsPerPage"] == 2
    body = scim.get("/Groups?sortBy=displayName&startIndex=3&count=2").get_json()
    assert [g["displayName"] for g in body["Resources"]] == ["gamma"]
    assert body["Resources"][0]["members"][0]["value"] == a
    body = scim.get(f'/Groups?filter=members.value eq "{a}"').get_json()
    assert [g["displayName"] for g in body["Resources"]] == ["gamma"]
    body = scim.get(f'/Groups?filter=members[value eq "{a}"]').get_json()
    assert [g["displayName"] for g in body["Resources"]] == ["gamma"]
    body = scim.get("/Groups?attributes=displayName").get_json()
    assert set(body["Resources"][0]) == {"schemas", "id", "displayName"}
    r = scim.get('/Groups?filter=members.display eq "x"')
    assert r.status_code == 400 and r.get_json()["scimType"] == "invalidFilter"
    r = scim.get('/Groups?filter=nope eq "x"')
    assert r.status_code == 400 and r.get_json()["scimType"] == "invalidFilter"
    searched = scim.post("/Groups/.search", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'displayName sw "g"', "excludedAttributes": ["members"]}).get_json()
    assert [g["displayName"] for g in searched["Resources"]] == ["gamma"]
    other = ScimClient(scim.client, make_org(scim.org.app))
    assert other.get("/Groups").get_json()["totalResults"] == 0


def test_deleting_a_user_removes_its_memberships(scim):
    a = scim.create_user()["id"]
    group = new_group(scim, members=[a])
    assert scim.delete(f"/Users/{a}").status_code == 204
    assert member_values(scim, group["id"]) == []


def test_members_cap_on_single_get(scim, app):
    users = [scim.create_user()["id"] for _ in range(5)]
    group = new_group(scim, members=users)
    old = app.config["SCIM_GROUP_MEMBERS_MAX"]
    app.config["SCIM_GROUP_MEMBERS_MAX"] = 3
    try:
        r = scim.get(f"/Groups/{group['id']}")
        assert [m["value"] for m in r.get_json()["members"]] == users[:3]
        assert r.headers["Workteam-Members-Truncated"] == "true"
    finally:
        app.config["SCIM_GROUP_MEMBERS_MAX"] = old
    r = scim.get(f"/Groups/{group['id']}")
    assert "Workteam-Members-Truncated" not in r.headers
    # paging through members, the documented way
    query = f'filter=groups.value eq "{group["id"]}"&startIndex=4&count=2'
    page = scim.get(f"/Users?{query}").get_json()
    assert page["totalResults"] == 5
    assert [u["id"] for u in page["Resources"]] == users[3:]


def test_cursor_pagination_of_groups(scim):
    names = [f"cur-{i}" for i in range(5)]
    for n in names:
        new_group(scim, n)
    seen, cursor = [], ""
    for _ in range(5):
        body = scim.get(f"/Groups?cursor={cursor}&count=2&excludedAttributes=members").get_json()
        seen += [g["displayName"] for g in body["Resources"]]
        cursor = body.get("nextCursor")
        if not cursor:
            break
    assert seen == names
