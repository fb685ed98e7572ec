"""The Users resource end to end: RFC 7643 §4.1/§4.3 attributes, RFC 7644 §3 operations."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from models import AuditEvent, User

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

# RFC 7643 §8.2 "Full User Representation" (with the enterprise extension of §8.3), as a client
# sends it: no id/meta, password included.
FULL_USER = {
    "schemas": [CORE, ENTERPRISE],
    "externalId": "701984",
    "userName": "bjensen@example.com",
    "name": {
        "formatted": "Ms. Barbara J Jensen, III",
        "familyName": "Jensen",
        "givenName": "Barbara",
        "middleName": "Jane",
        "honorificPrefix": "Ms.",
        "honorificSuffix": "III",
    },
    "displayName": "Babs Jensen",
    "nickName": "Babs",
    "profileUrl": "https://login.example.com/bjensen",
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "addresses": [
        {
            "type": "work",
            "streetAddress": "100 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "USA",
            "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
            "primary": True,
        }
    ],
    "phoneNumbers": [
        {"value": "555-555-5555", "type": "work"},
        {"value": "555-555-4444", "type": "mobile"},
    ],
    "ims": [{"value": "someaimhandle", "type": "aim"}],
    "photos": [
        {"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}
    ],
    "userType": "Employee",
    "title": "Tour Guide",
    "preferredLanguage": "en-US",
    "locale": "en-US",
    "timezone": "America/Los_Angeles",
    "active": True,
    "password": "t1meMa$heen",
    "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw"}],
    "entitlements": [{"value": "Employee access", "type": "default"}],
    "roles": [{"value": "Tour guide", "type": "tour", "primary": True}],
    ENTERPRISE: {
        "employeeNumber": "701984",
        "costCenter": "4130",
        "organization": "Universal Studios",
        "division": "Theme Park",
        "department": "Tour Operations",
        "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
    },
}


def test_rfc7643_full_user_round_trips_exactly(scim, app):
    response = scim.post("/Users", FULL_USER)
    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/scim+json")
    user = response.get_json()
    sent = {k: v for k, v in FULL_USER.items() if k not in ("password", "schemas")}
    for key, value in sent.items():
        if key == ENTERPRISE:
            assert {k: v for k, v in user[ENTERPRISE].items()} == value
        else:
            assert user[key] == value, key
    assert "password" not in user
    assert CORE in user["schemas"] and ENTERPRISE in user["schemas"]
    meta = user["meta"]
    assert meta["resourceType"] == "User"
    assert meta["location"] == f"{scim.org.base_url}/Users/{user['id']}"
    assert response.headers["Location"] == meta["location"]
    assert response.headers["ETag"] == meta["version"]
    assert meta["created"] == meta["lastModified"]
    # The same again on a GET.
    got = scim.get(f"/Users/{user['id']}").get_json()
    assert got == user
    # The password is stored as an argon2 hash, never as sent.
    with app.extensions["db.sessions"]() as session:
        row = session.scalar(select(User).where(User.user_name == "bjensen@example.com",
                                                User.org_id == scim.org.id))
        assert row.password_hash.startswith("$argon2")
        assert "t1meMa$heen" not in json.dumps(row.attrs)
        # The user guide's attributes are real columns.
        assert (row.given_name, row.family_name, row.display_name) == ("Barbara", "Jensen",
                                                                      "Babs Jensen")
        assert (row.title, row.nick_name, row.department) == ("Tour Guide", "Babs",
                                                            "Tour Operations")
        assert row.primary_email == "bjensen@example.com"
        assert row.manager_value == "26118915-6090-4610-87e4-49d8ca9f808d"


def test_read_only_values_sent_by_client_are_ignored(scim):
    body = {
        "schemas": [CORE],
        "userName": "ro@example.com",
        "id": "client-chosen-id",
        "meta": {"resourceType": "User", "created": "2001-01-01T00:00:00Z"},
        "groups": [{"value": "g1"}],
    }
    user = scim.post("/Users", body).get_json()
    assert user["id"] != "client-chosen-id"
    assert not user["meta"]["created"].startswith("2001")
    assert "groups" not in user or user["groups"] == []


def test_attribute_names_and_urns_are_case_insensitive(scim):
    body = {
        "SCHEMAS": [CORE.upper()],
        "UserName": "case@example.com",
        "NAME": {"GIVENNAME": "Case"},
        ENTERPRISE.lower(): {"Department": "Sales"},
    }
    response = scim.request("POST", "/Users", body)
    assert response.status_code == 201, response.get_json()
    user = response.get_json()
    assert user["userName"] == "case@example.com"
    assert user["name"] == {"givenName": "Case"}
    assert user[ENTERPRISE] == {"department": "Sales"}


def test_user_name_unique_case_insensitively(scim):
    scim.create_user("Dup@Example.com")
    response = scim.post("/Users", {"schemas": [CORE], "userName": "dup@example.COM"})
    assert response.status_code == 409
    body = response.get_json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "409"
    assert body["scimType"] == "uniqueness"


def test_same_user_name_in_two_organizations_is_fine(scim, client, app):
    from tests.conftest import ScimClient, make_org

    scim.create_user("shared@example.com")
    other = ScimClient(client, make_org(app))
    other.create_user("shared@example.com")


def test_put_replaces_and_keeps_password(scim, app):
    user = scim.create_user("put@example.com", password="secret-1", title="Old",
                            nickName="Nick")
    body = {"schemas": [CORE], "id": user["id"], "userName": "put@example.com",
            "title": "New", "meta": {"resourceType": "User"}}
    response = scim.put(f"/Users/{user['id']}", body)
    assert response.status_code == 200
    updated = response.get_json()
    assert updated["title"] == "New"
    assert "nickName" not in updated  # PUT replaces: omitted attributes are cleared
    assert updated["meta"]["version"] != user["meta"]["version"]
    with app.extensions["db.sessions"]() as session:
        row = session.get(User, __import__("uuid").UUID(user["id"]))
        from models.passwords import verify_password

        assert verify_password(row.password_hash, "secret-1")


def test_change_user_name_and_primary_email(scim):
    """The old product could not (user guide, Known issues); this one must."""
    user = scim.create_user("old@example.com",
                            emails=[{"value": "old@example.com", "type": "work", "primary": True}])
    scim.create_user("taken@example.com")
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "value": {
                 "userName": "new@example.com",
                 "emails": [{"value": "new@example.com", "type": "work", "primary": True}]}}]}
    response = scim.patch(f"/Users/{user['id']}", patch)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["userName"] == "new@example.com"
    found = scim.get('/Users?filter=emails.value eq "new@example.com"').get_json()
    assert [r["id"] for r in found["Resources"]] == [user["id"]]
    assert scim.get('/Users?filter=userName eq "old@example.com"').get_json()["totalResults"] == 0
    # Uniqueness still holds on rename.
    clash = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "path": "userName", "value": "TAKEN@example.com"}]}
    response = scim.patch(f"/Users/{user['id']}", clash)
    assert response.status_code == 409
    assert response.get_json()["scimType"] == "uniqueness"


def test_delete_then_get_is_404(scim):
    user = scim.create_user()
    assert scim.delete(f"/Users/{user['id']}").status_code == 204
    response = scim.get(f"/Users/{user['id']}")
    assert response.status_code == 404
    assert response.get_json()["schemas"] == [ERROR]
    assert scim.delete(f"/Users/{user['id']}").status_code == 404


def test_list_pagination_is_stable_and_bounded(scim, app):
    ids = [scim.create_user(f"page{i:02d}@example.com")["id"] for i in range(7)]
    seen = []
    for start in (1, 4, 7):
        page = scim.get(f"/Users?startIndex={start}&count=3").get_json()
        assert page["schemas"] == [LIST]
        assert page["totalResults"] == 7 and page["startIndex"] == start
        assert isinstance(page["itemsPerPage"], int)
        seen += [r["id"] for r in page["Resources"]]
    assert seen == ids
    assert scim.get("/Users?startIndex=0&count=2").get_json()["startIndex"] == 1
    capped = scim.get("/Users?count=100000").get_json()
    assert capped["itemsPerPage"] <= app.config["SCIM_MAX_PAGE_SIZE"]
    totals = scim.get("/Users?count=0").get_json()
    assert totals["totalResults"] == 7 and totals["Resources"] == []
    assert scim.get("/Users?count=abc").status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        'userName eq "filter@example.com"',
        'userName eq "FILTER@EXAMPLE.COM"',
        'externalId eq "ext-filter"',
        'emails[type eq "work"].value eq "Filter.Work@example.com"',
        'emails.value eq "filter.work@example.com"',
        'emails[type eq "work" and value co "work@"]',
    ],
)
def test_lookup_filters(scim, query):
    target = scim.create_user(
        "filter@example.com",
        externalId="ext-filter",
        emails=[{"value": "filter.work@example.com", "type": "work"},
                {"value": "filter.home@example.com", "type": "home"}],
    )
    scim.create_user("other@example.com", externalId="ext-other",
                     emails=[{"value": "filter.work@example.com.au", "type": "home"}])
    found = scim.get("/Users", query_string={"filter": query}).get_json()
    assert [r["id"] for r in found["Resources"]] == [target["id"]], query


def test_entra_test_connection_returns_empty_list(scim):
    # E1: "queries the SCIM endpoint for a user that doesn't exist, using a random GUID"
    response = scim.get('/Users?filter=userName eq "5f0a1c52-6a7e-4d5e-9b0b-0f5a3a3c9d11"')
    assert response.status_code == 200
    assert response.get_json() == {"schemas": [LIST], "totalResults": 0, "itemsPerPage": 0,
                                   "startIndex": 1, "Resources": []}


def test_audit_row_per_request_without_secrets(scim, app):
    user = scim.create_user("audit@example.com", password="do-not-log-me")
    scim.get(f"/Users/{user['id']}")
    with app.extensions["db.sessions"]() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.org_id == scim.org.id).order_by(AuditEvent.id)
        ).all()
    assert [(r.method, r.status) for r in rows][-2:] == [("POST", 201), ("GET", 200)]
    assert rows[-1].resource_id == user["id"]
    assert rows[-1].token_prefix and scim.org.token.startswith(rows[-1].token_prefix)
    assert all(scim.org.token not in (r.path + (r.token_prefix or "")) for r in rows)
    assert all(r.duration_ms >= 0 for r in rows)
