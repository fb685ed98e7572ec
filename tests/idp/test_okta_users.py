"""The requests Okta sends to provision users, replayed in order.

Sources (see ../shared/reference/idp-requests-and-rfc.md §2): Okta SCIM 2.0 reference
(developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20), "Build your SCIM API service",
and the Okta "SCIM 2.0 SPEC Test" Runscope suite (as translated in tataanil/scim-test-suite
idp/okta/okta.go). Headers as the spec test sends them.
"""

from __future__ import annotations

import json

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OKTA_HEADERS = {
    "User-Agent": "Okta SCIM Client 1.0.0",
    "Accept": "application/scim+json",
    "Content-Type": "application/scim+json; charset=utf-8",
}


def okta(scim, method, path, body=None):
    data = json.dumps(body) if body is not None else None
    return scim.request(method, path, data=data, headers=dict(OKTA_HEADERS))


# O3 "Create", Okta SCIM 2.0 reference
CREATE = {
    "schemas": [CORE],
    "userName": "test.user@okta.local",
    "name": {"givenName": "Test", "familyName": "User"},
    "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
    "displayName": "Test User",
    "locale": "en-US",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "groups": [],
    "password": "1mz050nq",
    "active": True,
}


def test_okta_full_lifecycle(scim, app):
    # O2 lookup before create: eq on userName, startIndex and count: an empty ListResponse.
    r = okta(scim, "GET", '/Users?filter=userName%20eq%20%22test.user%40okta.local%22'
                          '&startIndex=1&count=100')
    assert r.status_code == 200
    assert r.get_json() == {"schemas": [LIST], "totalResults": 0, "startIndex": 1,
                            "itemsPerPage": 0, "Resources": []}

    # O3 create: 201 with the user and its id, password not echoed.
    r = okta(scim, "POST", "/Users", CREATE)
    assert r.status_code == 201
    user = r.get_json()
    assert user["id"] and user["userName"] == "test.user@okta.local"
    assert user["active"] is True and "password" not in user
    uid = user["id"]

    # Spec test "Expect failure when recreating user with same values": 409.
    r = okta(scim, "POST", "/Users", CREATE)
    assert r.status_code == 409 and r.get_json()["scimType"] == "uniqueness"

    # O1 Test API credentials / "Test Users endpoint": numbers, not strings; required fields.
    r = okta(scim, "GET", "/Users?count=1&startIndex=1")
    page = r.get_json()
    assert r.status_code == 200 and LIST in page["schemas"]
    assert all(isinstance(page[k], int) for k in ("itemsPerPage", "startIndex", "totalResults"))
    first = page["Resources"][0]
    assert {"id", "userName", "active"} <= set(first)
    assert first["name"]["familyName"] and first["name"]["givenName"]
    assert first["emails"][0]["value"]

    # Spec test "Username Case Sensitivity Check": ALL CAPS userName, 200 and a hit.
    r = okta(scim, "GET", '/Users?filter=userName eq "TEST.USER@OKTA.LOCAL"')
    assert r.status_code == 200 and r.get_json()["totalResults"] == 1

    # O4 read, and the spec test's unknown id.
    assert okta(scim, "GET", f"/Users/{uid}").get_json()["id"] == uid
    r = okta(scim, "GET", "/Users/010101001010101011001010101011")
    assert r.status_code == 404 and r.get_json()["detail"]

    # O5 update via PUT (GET first, then PUT without password; meta sent back).
    put = {"schemas": [CORE], "id": uid, "userName": "test.user@okta.local",
           "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"},
           "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work",
                       "display": "test.user@okta.local"}],
           "active": True, "groups": [], "meta": {"resourceType": "User"}}
    r = okta(scim, "PUT", f"/Users/{uid}", put)
    assert r.status_code == 200
    assert r.get_json()["name"] == {"givenName": "Another", "middleName": "Excited",
                                    "familyName": "User"}
    _assert_password(app, uid, "1mz050nq")  # PUT without password keeps it

    # O6 deactivate and reactivate (OIN), path-less replace.
    for active in (False, True):
        r = okta(scim, "PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": [
            {"op": "replace", "value": {"active": active}}]})
        assert r.status_code == 200 and r.get_json()["active"] is active

    # AIW deactivation: the PUT with "active": false.
    r = okta(scim, "PUT", f"/Users/{uid}", {**put, "active": False})
    assert r.status_code == 200 and r.get_json()["active"] is False

    # O7 password sync, both shapes (UNVERIFIED in Okta's docs: replay both).
    okta(scim, "PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"password": "new-pass-1"}}]})
    _assert_password(app, uid, "new-pass-1")
    r = okta(scim, "PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "password", "value": "new-pass-2"}]})
    assert r.status_code == 200 and "password" not in r.get_json()
    _assert_password(app, uid, "new-pass-2")


def test_okta_import_pages_through_every_user(scim):
    """O8: GET ?startIndex=1&count=100, then 101..., until totalResults; stable order."""
    ids = [scim.create_user(f"import{i:03d}@okta.local")["id"] for i in range(25)]
    seen, start = [], 1
    while True:
        page = okta(scim, "GET", f"/Users?startIndex={start}&count=10").get_json()
        seen += [r["id"] for r in page["Resources"]]
        start += page["itemsPerPage"]
        if start > page["totalResults"]:
            break
    assert seen == ids


def _assert_password(app, uid, password):
    import uuid

    from models import User
    from models.passwords import verify_password

    with app.extensions["db.sessions"]() as session:
        assert verify_password(session.get(User, uuid.UUID(uid)).password_hash, password)
