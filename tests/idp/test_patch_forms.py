"""PATCH forms end to end over HTTP (the unit tests in tests/unit/test_patch.py cover the
engine; these check that what the engine does is what gets stored and returned).

Sources: RFC 7644 §3.5.2.1-3 examples; Okta O6/O11 (path-less replace carrying id); Entra
E6 (add on a filtered path creates the entry), E8, E9.
"""

from __future__ import annotations

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _patch(scim, uid, *ops, status=200):
    response = scim.patch(f"/Users/{uid}", {"schemas": [PATCH], "Operations": list(ops)})
    assert response.status_code == status, response.get_json()
    return response.get_json()


def test_okta_pathless_replace_carrying_id_is_tolerated(scim):
    user = scim.create_user("okta.id@example.com")
    got = _patch(scim, user["id"], {"op": "replace", "value": {
        "id": user["id"], "displayName": "Renamed", "meta": {"resourceType": "User"}}})
    assert got["displayName"] == "Renamed" and got["id"] == user["id"]


def test_rfc7644_add_remove_replace_on_multi_valued(scim):
    user = scim.create_user("multi@example.com", emails=[
        {"value": "a@example.com", "type": "work", "primary": True},
        {"value": "b@example.com", "type": "home"}],
        addresses=[{"type": "work", "locality": "Hollywood"}])
    uid = user["id"]
    # RFC 7644 §3.5.2.1: add to a multi-valued attribute appends; primary stays unique.
    got = _patch(scim, uid, {"op": "add", "path": "emails",
                             "value": [{"value": "c@example.com", "type": "other",
                                        "primary": True}]})
    assert [e["value"] for e in got["emails"] if e.get("primary")] == ["c@example.com"]
    # §3.5.2.3: replace a sub-attribute through a value filter.
    got = _patch(scim, uid, {"op": "replace", "path": 'addresses[type eq "work"].locality',
                             "value": "Burbank"})
    assert got["addresses"] == [{"type": "work", "locality": "Burbank"}]
    # §3.5.2.2: remove entries matching a filter.
    got = _patch(scim, uid, {"op": "remove", "path": 'emails[type eq "home"]'})
    assert {e["value"] for e in got["emails"]} == {"a@example.com", "c@example.com"}
    # Entra: remove with a value list removes just those entries, never all.
    got = _patch(scim, uid, {"op": "Remove", "path": "emails",
                             "value": [{"value": "a@example.com"}]})
    assert [e["value"] for e in got["emails"]] == ["c@example.com"]
    # A filter that matches nothing on remove: noTarget, and nothing changed.
    error = _patch(scim, uid, {"op": "remove", "path": 'emails[type eq "home"]'}, status=400)
    assert error["scimType"] == "noTarget"
    assert scim.get(f"/Users/{uid}").get_json()["emails"] == got["emails"]


def test_operations_are_all_or_nothing(scim):
    user = scim.create_user("atomic@example.com", title="Before")
    error = _patch(scim, user["id"],
                   {"op": "replace", "path": "title", "value": "After"},
                   {"op": "replace", "path": "id", "value": "nope"}, status=400)
    assert error["scimType"] == "mutability" and "Operations[1]" in error["detail"]
    assert scim.get(f"/Users/{user['id']}").get_json()["title"] == "Before"


def test_enterprise_attributes_by_urn_path_and_object(scim):
    user = scim.create_user("ent@example.com")
    got = _patch(scim, user["id"], {"op": "add", "path": ENTERPRISE,
                                    "value": {"department": "Tours", "costCenter": "41"}})
    assert got[ENTERPRISE] == {"department": "Tours", "costCenter": "41"}
    got = _patch(scim, user["id"], {"op": "remove", "path": f"{ENTERPRISE}:costCenter"})
    assert got[ENTERPRISE] == {"department": "Tours"}
    found = scim.get("/Users", query_string={"filter": 'department eq "tours"'}).get_json()
    assert [r["id"] for r in found["Resources"]] == [user["id"]]
