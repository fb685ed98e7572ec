"""Admin pages: sign-in, sessions, CSRF, tenant isolation, token and switch, activity, users."""

from __future__ import annotations

import pytest
from flask import session
from flask.sessions import NullSession

from tests.conftest import ScimClient, make_org
from tests.integration.admin_helpers import (
    PASSWORD,
    configure,
    make_admin,
    page_csrf,
    sign_in,
)

SCIM_PAGE = "/admin/settings/integrations/scim"


@pytest.fixture(autouse=True)
def _admin_config(app):  # type: ignore[no-untyped-def]
    saved = dict(app.config)
    configure(app)
    yield
    app.config.clear()
    app.config.update(saved)


def test_sign_in_and_out(app, client, org):  # type: ignore[no-untyped-def]
    email = make_admin(app, org.id)
    assert client.get("/admin/settings").status_code == 302
    response = sign_in(client, email)
    assert response.status_code == 302 and response.location.endswith("/admin/settings")
    page = client.get("/admin/settings?tab=integrations")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "SCIM User Provisioning" in html and ">Manage<" in html
    assert page.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    token = page_csrf(client)
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/admin/settings").status_code == 302


def test_session_cookie_flags(app, client, org):  # type: ignore[no-untyped-def]
    email = make_admin(app, org.id)
    response = sign_in(client, email)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-workteam_admin=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie


def test_scim_requests_open_no_session(app, client, org, scim):  # type: ignore[no-untyped-def]
    """The SCIM API has no use for the admin session: it is never opened there (Flask's null
    session), a signed-in admin's cookie sent along changes nothing, and no cookie is set."""
    with app.test_request_context(f"{org.base}/Users"):
        assert isinstance(session._get_current_object(), NullSession)
    with app.test_request_context("/admin/settings"):
        assert not isinstance(session._get_current_object(), NullSession)
    sign_in(client, make_admin(app, org.id))
    listed = scim.get("/Users")
    assert listed.status_code == 200 and "Set-Cookie" not in listed.headers
    refused = client.get(f"{org.base}/Users")  # the cookie is no credential for SCIM
    assert refused.status_code == 401 and "Set-Cookie" not in refused.headers
    assert client.get("/admin/settings").status_code == 200  # and the admin stays signed in


def test_wrong_password_non_admin_and_deactivated_refused(app, client, org):  # type: ignore[no-untyped-def]
    email = make_admin(app, org.id)
    assert sign_in(client, email, "wrong password!").status_code == 401
    assert sign_in(client, "nobody@example.com").status_code == 401
    plain = make_admin(app, org.id, admin=False)
    assert sign_in(client, plain).status_code == 401
    inactive = make_admin(app, org.id, active=False)
    assert sign_in(client, inactive).status_code == 401


def test_deactivation_ends_a_live_session(app, client, org):  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from models.user import User

    email = make_admin(app, org.id)
    assert sign_in(client, email).status_code == 302
    assert client.get("/admin/settings").status_code == 200
    with app.extensions["db.sessions"]() as session:  # as a SCIM deactivation leaves it
        session.execute(update(User).where(User.user_name == email).values(active=False))
        session.commit()
    assert client.get("/admin/settings").status_code == 302


def test_sign_out_revokes_the_cookie_on_the_server(app, client, org):  # type: ignore[no-untyped-def]
    email = make_admin(app, org.id)
    sign_in(client, email)
    stolen = client.get_cookie("__Host-workteam_admin").value
    client.post("/admin/logout", data={"csrf_token": page_csrf(client)})
    other = app.test_client()
    other.set_cookie("__Host-workteam_admin", stolen)
    assert other.get("/admin/settings").status_code == 302


def test_csrf_required_on_every_form(app, client, org):  # type: ignore[no-untyped-def]
    email = make_admin(app, org.id)
    # sign-in itself needs the token
    assert (
        client.post("/admin/login", data={"email": email, "password": PASSWORD}).status_code == 400
    )
    sign_in(client, email)
    for path in (
        SCIM_PAGE + "/token",
        SCIM_PAGE + "/enabled",
        SCIM_PAGE + "/resync",
        SCIM_PAGE + "/resync/cancel",
        "/admin/logout",
    ):
        assert client.post(path, data={}).status_code == 400, path
        assert client.post(path, data={"csrf_token": "forged"}).status_code == 400, path
    assert client.post("/admin/api/resync", json={}).status_code == 400
    # a token from another session does not work here
    other = app.test_client()
    other_token = page_csrf(other, "/admin/login")
    assert client.post(SCIM_PAGE + "/token", data={"csrf_token": other_token}).status_code == 400
    # a cross-site Origin is refused even with a valid token
    token = page_csrf(client)
    response = client.post(
        SCIM_PAGE + "/enabled",
        data={"csrf_token": token, "enabled": "off"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 400


def test_generate_token_replaces_the_old_one(app, client, org, scim):  # type: ignore[no-untyped-def]
    email = make_admin(app, org.id)
    sign_in(client, email)
    assert scim.get("/Users").status_code == 200
    html = client.post(SCIM_PAGE + "/token", data={"csrf_token": page_csrf(client)}).get_data(
        as_text=True
    )
    import re

    new = re.search(r'id="bearer-token" type="text" readonly value="([^"]+)"', html).group(1)
    assert "shown only once" in html
    assert scim.get("/Users").status_code == 401  # the old token stopped at once
    scim.org.token = new
    assert scim.get("/Users").status_code == 200
    page = client.get(SCIM_PAGE).get_data(as_text=True)
    assert new not in page and new[:13] in page  # prefix only, afterwards


def test_enabled_toggle(app, client, org, scim):  # type: ignore[no-untyped-def]
    email = make_admin(app, org.id)
    sign_in(client, email)
    client.post(SCIM_PAGE + "/enabled", data={"csrf_token": page_csrf(client), "enabled": "off"})
    assert scim.get("/Users").status_code == 403
    client.post(SCIM_PAGE + "/enabled", data={"csrf_token": page_csrf(client), "enabled": "on"})
    assert scim.get("/Users").status_code == 200


def test_free_plan_sees_why(app, client):  # type: ignore[no-untyped-def]
    free = make_org(app, plan="free", enabled=False)
    email = make_admin(app, free.id)
    sign_in(client, email)
    html = client.get(SCIM_PAGE).get_data(as_text=True)
    assert "needs a paid plan" in html
    response = client.post(
        SCIM_PAGE + "/enabled", data={"csrf_token": page_csrf(client), "enabled": "on"}
    )
    assert response.status_code == 302
    assert "needs a paid plan" in client.get(SCIM_PAGE).get_data(as_text=True)
    from models import Organization

    with app.extensions["db.sessions"]() as session:
        assert session.get(Organization, free.id).scim_enabled is False


def test_tenant_isolation(app, client, scim):  # type: ignore[no-untyped-def]
    other = make_org(app)
    scim.create_user("secret-person@a.example")
    email_b = make_admin(app, other.id)
    sign_in(client, email_b)
    for path in ("/admin/settings", SCIM_PAGE, SCIM_PAGE + "/activity", SCIM_PAGE + "/users"):
        html = client.get(path).get_data(as_text=True)
        assert str(scim.org.id) not in html, path
        assert "secret-person" not in html, path
    assert str(other.id) in client.get(SCIM_PAGE).get_data(as_text=True)
    # another organization's job is not found, not forbidden (no oracle)
    from models import resync as r

    with app.extensions["db.sessions"]() as session:
        job = r.create_job(session, scim.org.id, dry_run=True)
        session.commit()
        job_id = job.id
    assert client.get(f"/admin/api/resync/{job_id}").status_code == 404
    token = page_csrf(client)
    assert (
        client.post(
            f"/admin/api/resync/{job_id}/cancel", headers={"X-CSRFToken": token}
        ).status_code
        == 409
    )
    with app.extensions["db.sessions"]() as session:
        from models.outbox import Job

        assert session.get(Job, job_id).state == "pending"
        session.get(Job, job_id).state = "cancelled"
        session.commit()


def test_sign_in_rate_limited(app, client, org):  # type: ignore[no-untyped-def]
    email = make_admin(app, org.id)
    app.config["WORKTEAM_ADMIN_LOGIN_MAX_PER_ACCOUNT"] = 3
    codes = [sign_in(client, email, "wrong password!").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert sign_in(client, email).status_code == 429  # even the right password, for a while


def test_activity_filters_and_pages(app, client, scim):  # type: ignore[no-untyped-def]
    from models.audit import AuditEvent

    email = make_admin(app, scim.org.id)
    user = scim.create_user("activity-user@example.com")
    missing = "00000000-0000-0000-0000-000000000000"
    with app.extensions["db.sessions"]() as session:  # rows as web/scim/audit.py writes them
        for method, path, status, rid in (
            ("POST", "/Users", 201, user["id"]),
            ("GET", f"/Users/{user['id']}", 200, user["id"]),
            ("GET", f"/Users/{missing}", 404, missing),
        ):
            session.add(
                AuditEvent(
                    org_id=scim.org.id,
                    method=method,
                    path=scim.org.base + path,
                    status=status,
                    resource_id=rid,
                    duration_ms=1.0,
                )
            )
        session.commit()
    sign_in(client, email)
    html = client.get(SCIM_PAGE + "/activity").get_data(as_text=True)
    assert "activity-user@example.com" in html and "404" in html
    assert "requests are kept for 90 days" in html  # WORKTEAM_AUDIT_RETENTION_DAYS
    only_404 = client.get(SCIM_PAGE + "/activity?status=4xx").get_data(as_text=True)
    assert missing in only_404 and "activity-user@example.com" not in only_404
    posts = client.get(SCIM_PAGE + "/activity?method=POST").get_data(as_text=True)
    assert "<td>POST</td>" in posts and "<td>GET</td>" not in posts
    app.config["WORKTEAM_ADMIN_PAGE_SIZE"] = 1
    paged = client.get(SCIM_PAGE + "/activity?page=2").get_data(as_text=True)
    assert "Page 2 of" in paged


def test_activity_counts_up_to_a_cap_and_pages_past_it(app, client, scim, monkeypatch):  # type: ignore[no-untyped-def]
    """Past COUNT_CAP matching requests the tab says "more than" and keeps paging."""
    from web.admin import actions

    monkeypatch.setattr(actions, "COUNT_CAP", 3)
    monkeypatch.setitem(app.config, "WORKTEAM_ADMIN_PAGE_SIZE", 2)
    email = make_admin(app, scim.org.id)
    for n in range(6):
        assert scim.get(f"/Users/missing-{n}").status_code == 404
    sign_in(client, email)
    first = client.get(SCIM_PAGE + "/activity").get_data(as_text=True)
    assert "More than 3 requests" in first and "Page 1</span>" in first
    assert "missing-5" in first and 'rel="next"' in first
    last = client.get(SCIM_PAGE + "/activity?page=3").get_data(as_text=True)
    assert "missing-1" in last and "missing-0" in last  # the oldest, past the count
    beyond = client.get(SCIM_PAGE + "/activity?page=4").get_data(as_text=True)
    assert "No requests yet." in beyond and 'rel="next"' not in beyond
    only_404 = client.get(SCIM_PAGE + "/activity?status=404&path=missing-4")
    text = only_404.get_data(as_text=True)
    assert "1 request;" in text and "Page 1 of 1" in text  # under the cap: counted


def test_users_overview(app, client, scim):  # type: ignore[no-untyped-def]
    email = make_admin(app, scim.org.id)
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    scim.create_user(
        "orphan@example.com",
        schemas=["urn:ietf:params:scim:schemas:core:2.0:User", enterprise],
        **{enterprise: {"manager": {"value": "no-such-manager"}}},
    )
    sign_in(client, email)
    html = client.get(SCIM_PAGE + "/users").get_data(as_text=True)
    assert "orphan@example.com" in html and "no-such-manager" in html
    assert "seats used" in html


def test_users_overview_counts_seats_and_waiting(app, client):  # type: ignore[no-untyped-def]
    """Seats used come from the tally the license check keeps; the waiting are counted."""
    from models import licensing

    org = make_org(app, seats=1)
    scim = ScimClient(app.test_client(), org)
    for name in ("first", "second", "third"):
        scim.create_user(f"{name}-{org.id.hex[:6]}@example.com")
    with app.extensions["db.sessions"]() as session:
        licensing.reconcile(session, org.id)  # as the worker's check: one seat, two waiting
        session.commit()
    sign_in(client, make_admin(app, org.id))
    html = client.get(SCIM_PAGE + "/users").get_data(as_text=True)
    assert "1 of 1 seats used" in html and "4 active users" in html  # the admin too
    assert html.count("-" + org.id.hex[:6] + "@example.com") == 2  # the two waiting, listed
