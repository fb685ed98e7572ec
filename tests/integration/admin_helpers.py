"""Helpers for the admin page tests: admins, sign-in, CSRF tokens from rendered forms."""

from __future__ import annotations

import re
import uuid

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import RUN_ID

PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def configure(app: Flask) -> None:
    """Redis keys of this run only; sign-in limits out of the way unless a test sets them."""
    app.config["WORKTEAM_REDIS_KEY_PREFIX"] = f"workteam-test-{RUN_ID}"
    app.config["WORKTEAM_ADMIN_LOGIN_MAX_PER_IP"] = 100_000
    app.config["WORKTEAM_ADMIN_LOGIN_MAX_PER_ACCOUNT"] = 100_000


def make_admin(
    app: Flask,
    org_id: uuid.UUID,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    admin: bool = True,
    active: bool = True,
) -> str:
    from models import store
    from models.passwords import hash_password

    email = email or f"admin-{uuid.uuid4().hex[:8]}@example.com"
    with app.extensions["db.sessions"]() as session:
        attrs = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": email,
            "emails": [{"value": email, "primary": True}],
            "active": active,
        }
        user = store.create_user(
            session, org_id, attrs, hash_password(password, memory_kib=1024, time_cost=1)
        ).user
        user.is_admin = admin
        session.commit()
    return email


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    page = client.get("/admin/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post(
        "/admin/login", data={"email": email, "password": password, "csrf_token": token}
    )


def page_csrf(client: FlaskClient, path: str = "/admin/settings/integrations/scim") -> str:
    return csrf_from(client.get(path).get_data(as_text=True))
