"""Shared fixtures: a real PostgreSQL database migrated by Alembic once per run, a real Redis
db, the Flask app, and organizations with tokens.

Isolation: every test works in organizations it creates (every query in the service is scoped
to one organization), so tests never see each other's rows. Rolled-back transactions would not
do here: the concurrency, worker and live-server tests need real commits on real connections.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from models import migrate

pytest_plugins = ["tests.fixtures_worker"]

BASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
RUN_ID = uuid.uuid4().hex[:8]
DB_NAME = f"workteam_test_{RUN_ID}"
DATABASE_URL = urlunsplit(urlsplit(BASE_URL)._replace(path=f"/{DB_NAME}"))
PUBLIC_URL = "http://scim.test"

TEST_ENV = {
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "SECRET_KEY": "test-secret-key-" + RUN_ID,
    "PUBLIC_URL": PUBLIC_URL,
    "SMTP_URL": "smtp://127.0.0.1:8026",
    "WORKTEAM_ENV": "production",
    # Fast password hashing in tests; production defaults are in web/config.py.
    "WORKTEAM_PASSWORD_HASH_MEMORY_KIB": "1024",
    "WORKTEAM_PASSWORD_HASH_TIME_COST": "1",
    "WORKTEAM_PUBLISH_TIMEOUT": "0.3",
    # Audit rows written synchronously, so tests can read them at once; the buffered writer
    # has its own test (tests/integration/test_audit.py).
    "WORKTEAM_AUDIT_FLUSH_SECONDS": "0",
}


def _admin_conn() -> psycopg.Connection:
    return psycopg.connect(BASE_URL, autocommit=True)


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """The URL of a database of its own, dropped afterwards: for a test that migrates from an
    older revision or truncates (which would take every other test's rows)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with _admin_conn() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(BASE_URL)._replace(path=f"/{name}"))
    finally:
        with _admin_conn() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_on(url: str, **settings: str) -> Flask:
    """The app on the database ``url`` (a scratch database), ``settings`` added to the test
    environment."""
    from web import create_app

    return create_app({"ENV_OVERRIDES": {**TEST_ENV, "DATABASE_URL": url, **settings},
                       "TESTING": True})


def insert_org(conn: psycopg.Connection, *, plan: str = "paid", seats: int = 10) -> uuid.UUID:
    """An organization inserted with SQL alone, for a database migrated to an older revision
    or without the app; its id."""
    return conn.execute(
        "INSERT INTO organizations (id, name, plan, seats, scim_enabled, created) "
        "VALUES (gen_random_uuid(), 'x', %s, %s, true, now()) RETURNING id", (plan, seats),
    ).fetchone()[0]


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with _admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    migrate.upgrade(DATABASE_URL)
    yield DATABASE_URL
    with _admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


@pytest.fixture(scope="session")
def app_env(database_url: str) -> dict[str, str]:
    return dict(TEST_ENV)


@pytest.fixture(scope="session")
def app(app_env: dict[str, str]) -> Iterator[Flask]:
    from web import create_app

    application = create_app({"ENV_OVERRIDES": app_env, "TESTING": True})
    yield application
    from web.database import dispose

    dispose(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class Org:
    id: uuid.UUID
    token: str
    app: Flask

    @property
    def base(self) -> str:
        return f"/scim/v2/{self.id}"

    @property
    def base_url(self) -> str:
        return f"{PUBLIC_URL}{self.base}"

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}


def make_org(app: Flask, *, plan: str = "paid", seats: int = 100, enabled: bool = True) -> Org:
    from models import Organization
    from models.tokens import issue_token

    with app.extensions["db.sessions"]() as session:
        org = Organization(name=f"Org {uuid.uuid4().hex[:6]}", plan=plan, seats=seats)
        session.add(org)
        session.flush()
        raw, _ = issue_token(session, org)
        org.scim_enabled = enabled
        session.commit()
        return Org(org.id, raw, app)


@pytest.fixture
def org(app: Flask) -> Org:
    return make_org(app)


class ScimClient:
    """A test client that speaks SCIM to one organization's Base URL."""

    def __init__(self, client: FlaskClient, org: Org) -> None:
        self.client = client
        self.org = org

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        headers = self.org.headers(**kw.pop("headers", {}))
        if body is not None and "data" not in kw:
            import json

            kw["data"] = json.dumps(body)
            headers.setdefault("Content-Type", "application/scim+json")
        return self.client.open(self.org.base + path, method=method, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def create_user(self, user_name: str | None = None, **attrs: Any) -> dict:
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name or f"user-{uuid.uuid4().hex[:10]}@example.com",
            **attrs,
        }
        response = self.post("/Users", body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()


@pytest.fixture
def scim(client: FlaskClient, org: Org) -> ScimClient:
    return ScimClient(client, org)
