"""Bearer tokens: 401 for every kind of wrong token, without saying whether the org exists."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from models import Organization
from models.tokens import issue_token
from tests.conftest import ScimClient, make_org

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _assert_401(response):
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.get_json()
    assert body["schemas"] == [ERROR] and body["status"] == "401"
    assert response.headers["Content-Type"].startswith("application/scim+json")
    return body


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not-a-token", "bearer x y",
     "Bearer " + "a" * 600],
)
def test_missing_or_malformed_token(client, org, header):
    headers = {} if header is None else {"Authorization": header}
    _assert_401(client.get(f"{org.base}/Users", headers=headers))


def test_other_organizations_token_is_401_everywhere(client, app, org):
    other = make_org(app)
    intruder = ScimClient(client, other)
    victim = ScimClient(client, org).create_user("victim@example.com")
    for method, path in [("GET", "/Users"), ("GET", f"/Users/{victim['id']}"),
                         ("DELETE", f"/Users/{victim['id']}"), ("GET", "/Schemas")]:
        response = client.open(f"{org.base}{path}", method=method, headers=intruder.org.headers())
        _assert_401(response)
    # The victim is untouched.
    assert ScimClient(client, org).get(f"/Users/{victim['id']}").status_code == 200


def test_unknown_organization_looks_like_a_bad_token(client, org):
    unknown = _assert_401(client.get(f"/scim/v2/{uuid.uuid4()}/Users", headers=org.headers()))
    malformed = _assert_401(client.get("/scim/v2/not-a-uuid/Users", headers=org.headers()))
    wrong_token = _assert_401(client.get(f"{org.base}/Users",
                                         headers={"Authorization": "Bearer nope"}))
    assert unknown["detail"] == malformed["detail"] == wrong_token["detail"]


def test_generating_a_new_token_revokes_the_old_one_at_once(client, app, org):
    old = org.token
    with app.extensions["db.sessions"]() as session:
        raw, _ = issue_token(session, session.get(Organization, org.id))
        session.commit()
    _assert_401(client.get(f"{org.base}/Users", headers={"Authorization": f"Bearer {old}"}))
    assert client.get(f"{org.base}/Users",
                      headers={"Authorization": f"Bearer {raw}"}).status_code == 200


def test_rotation_with_overlap_keeps_the_old_token_for_the_window(client, app, org):
    with app.extensions["db.sessions"]() as session:
        raw, _ = issue_token(session, session.get(Organization, org.id),
                             overlap=dt.timedelta(minutes=5))
        session.commit()
    for token in (org.token, raw):
        assert client.get(f"{org.base}/Users",
                          headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_free_plan_is_403(client, app):
    free = make_org(app, plan="free")
    response = client.get(f"{free.base}/Users", headers=free.headers())
    assert response.status_code == 403
    assert response.get_json()["detail"] == "SCIM provisioning requires a paid plan"


def test_disabled_scim_is_403(client, app):
    off = make_org(app, enabled=False)
    response = client.get(f"{off.base}/Users", headers=off.headers())
    assert response.status_code == 403
    assert "disabled" in response.get_json()["detail"]


def test_last_used_is_recorded(client, app, org):
    from sqlalchemy import select

    from models import ScimToken

    client.get(f"{org.base}/Users", headers=org.headers())
    with app.extensions["db.sessions"]() as session:
        token = session.scalar(select(ScimToken).where(ScimToken.org_id == org.id))
        assert token.last_used is not None
        assert len(token.token_hash) == 64 and org.token not in token.token_hash
        assert org.token.startswith(token.prefix)
