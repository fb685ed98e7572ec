"""Organization isolation, as a matrix: every SCIM route x every kind of wrong credential is
401, and another organization's token reaches nothing of this one's, through ids, filters,
manager and members references, or /Bulk."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select

from models import Organization
from models.group import Membership
from models.managers import resolve
from models.tokens import issue_token
from models.user import User
from tests.conftest import ScimClient, make_org
from tests.hardening.helpers import (
    GROUP_SCHEMA,
    SEARCH_SCHEMA,
    USER_SCHEMA,
    assert_scim_error,
    routes,
)

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture
def victim(client, app):
    """Organization A with a user, a manager, and a group holding the user."""
    org = make_org(app)
    scim = ScimClient(client, org)
    boss = scim.create_user("boss@victim.example", externalId="boss-ext")
    user = scim.create_user(
        "alice@victim.example",
        externalId="alice-ext",
        displayName="Alice Victim",
        emails=[{"value": "alice@victim.example", "primary": True}],
        **{ENTERPRISE: {"employeeNumber": "E-1", "manager": {"value": boss["id"]}}},
    )
    response = scim.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "Victims", "members": [{"value": user["id"]}]},
    )
    assert response.status_code == 201, response.get_json()
    return scim, user, response.get_json(), boss


WORKTEAM = "urn:workteam:params:scim:schemas:extension:workteam:2.0:User"


def _snapshot(scim: ScimClient) -> str:
    """Every user and group of the org as the API shows them, less the read-only states that
    the worker sets on its own time (license, manager resolution)."""
    users = scim.get("/Users?count=1000").get_json()["Resources"]
    groups = scim.get("/Groups?count=1000").get_json()["Resources"]
    for user in users:
        user.pop(WORKTEAM, None)
        manager = user.get(ENTERPRISE, {}).get("manager")
        if manager:  # resolved by the worker: $ref and displayName appear
            user[ENTERPRISE]["manager"] = {"value": manager["value"]}
    return json.dumps(
        sorted([*users, *groups], key=lambda r: r["id"]), sort_keys=True
    )


def _revoked_token(app, org_id) -> str:
    with app.extensions["db.sessions"]() as session:
        org = session.get(Organization, org_id)
        old, _ = issue_token(session, org)  # becomes the revoked one below
        issue_token(session, org)
        session.commit()
    return old


def _expired_overlap_token(app, org_id) -> str:
    with app.extensions["db.sessions"]() as session:
        org = session.get(Organization, org_id)
        old, token = issue_token(session, org)
        issue_token(session, org, overlap=dt.timedelta(seconds=30))
        token.revoked_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)  # window is over
        session.commit()
    return old


def test_routes_cover_every_scim_endpoint(app):
    rules = {
        re.sub(r"<[^>]+>", "<id>", r.rule.removeprefix("/scim/v2/<org_id>"))
        for r in app.url_map.iter_rules()
        if r.rule.startswith("/scim/v2/")
    }
    ours = {
        re.sub(r"/[0-9a-f-]{36}$|/urn:.*$|/User$", "/<id>", path)
        for _m, path, _b in routes("00000000-0000-0000-0000-000000000000",
                                   "00000000-0000-0000-0000-000000000000")
    }
    assert rules <= ours, f"routes missing from the matrix: {rules - ours}"


def test_every_route_with_wrong_credentials_is_401(client, app, victim):
    scim, user, group, _boss = victim
    org = scim.org
    intruder = make_org(app)
    before = _snapshot(scim)
    credentials = {
        "other organization's token": f"Bearer {intruder.token}",
        "revoked token": f"Bearer {_revoked_token(app, intruder.id)}",
        "overlap window over": f"Bearer {_expired_overlap_token(app, intruder.id)}",
        "no header": None,
        "empty": "",
        "scheme only": "Bearer",
        "basic": "Basic dXNlcjpwYXNz",
        "token without scheme": org.token,
        "token with suffix": f"Bearer {org.token}x",
        "token prefix": f"Bearer {org.token[:20]}",
        "two tokens": f"Bearer {org.token} {org.token}",
        "huge": "Bearer " + "a" * 10_000,
        "NUL": "Bearer \x00",
    }
    checked = 0
    for method, path, body in routes(user["id"], group["id"]):
        for name, header in credentials.items():
            headers = {"Content-Type": "application/scim+json"}
            if header is not None:
                headers["Authorization"] = header
            response = client.open(
                org.base + path,
                method=method,
                headers=headers,
                data=json.dumps(body) if body is not None else None,
            )
            error = assert_scim_error(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, path, name)
            assert "alice" not in json.dumps(error).lower()
            checked += 1
    assert checked == len(routes("a", "b")) * len(credentials)
    assert _snapshot(scim) == before


def test_another_organizations_token_reaches_nothing_of_this_one(client, app, victim):
    scim, user, group, boss = victim
    before = _snapshot(scim)
    intruder = ScimClient(client, make_org(app))
    own = intruder.create_user("mallory@intruder.example")
    uid, gid = user["id"], group["id"]

    # Ids of the victim's resources on the intruder's own Base URL: 404, never the resource.
    for method, path, body in routes(uid, gid):
        if path in ("/Users", "/Groups", "/Users/.search", "/.search", "/Groups/.search"):
            continue
        if path.startswith(("/ServiceProviderConfig", "/Schemas", "/ResourceTypes", "/Bulk",
                            "/Me")):
            continue
        response = intruder.request(method, path, body)
        assert_scim_error(response, 404)

    # Filters: nothing of the victim matches, whatever attribute is used.
    filters = [
        f'id eq "{uid}"',
        'userName eq "alice@victim.example"',
        'userName co "victim"',
        'externalId eq "alice-ext"',
        'emails.value eq "alice@victim.example"',
        f'emails[value ew "victim.example"] or id eq "{uid}"',
        f'{ENTERPRISE}:employeeNumber eq "E-1"',
        f'{ENTERPRISE}:manager.value eq "{boss["id"]}"',
        'displayName pr',
        'meta.lastModified gt "2000-01-01T00:00:00Z"',
    ]
    for text in filters:
        listed = intruder.get("/Users", query_string={"filter": text}).get_json()
        assert [r["id"] for r in listed.get("Resources", [])] in ([], [own["id"]]), text
        for path in ("/Users/.search", "/.search"):
            found = intruder.post(path, {"schemas": [SEARCH_SCHEMA], "filter": text}).get_json()
            assert [r["id"] for r in found.get("Resources", [])] in ([], [own["id"]]), text
    for text in [f'id eq "{gid}"', 'displayName eq "Victims"', f'members.value eq "{uid}"']:
        listed = intruder.get("/Groups", query_string={"filter": text}).get_json()
        assert listed["totalResults"] == 0, text

    # A manager reference to the victim's user stays pending, even after resolution.
    response = intruder.post(
        "/Users",
        {"schemas": [USER_SCHEMA], "userName": "m2@intruder.example",
         ENTERPRISE: {"manager": {"value": uid}}},
    )
    assert response.status_code == 201, response.get_json()
    managed = response.get_json()
    assert "Alice" not in json.dumps(managed)
    for reference in (uid, "alice@victim.example", "alice-ext", "E-1"):
        with app.extensions["db.sessions"]() as session:
            row = session.get(User, managed["id"])
            row.manager_value = reference
            resolve(session, row)
            assert row.manager_id is None and row.manager_state == "pending", reference
            session.rollback()

    # A group naming the victim's user as a member: never linked to it.
    response = intruder.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "Grab", "members": [{"value": uid}]},
    )
    assert response.status_code in (201, 400), response.get_json()
    assert "Alice" not in response.get_data(as_text=True)
    with app.extensions["db.sessions"]() as session:
        links = session.scalars(
            select(Membership).where(Membership.user_id == __import__("uuid").UUID(uid))
        ).all()
        assert {str(m.group_id) for m in links} == {gid}

    # /Bulk with the victim's ids: every operation 404, nothing changes.
    response = intruder.post("/Bulk", routes(uid, gid)[-1][2])
    assert response.status_code == 200, response.get_json()
    statuses = [op["status"] for op in response.get_json()["Operations"]]
    assert statuses == ["404", "404"], response.get_json()

    assert _snapshot(scim) == before
