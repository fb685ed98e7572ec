"""A database of its own and the Flask app on it, for the benches that run our service
in-process (bench_import.py, bench_resync.py, bench_license_check.py, bench_audit_prune.py,
bench_admin_pages.py): the figure is the service's work, not HTTP's."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from flask import Flask

BASE = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


# The apps ``app_on`` made: closed before their database is dropped.
_APPS: list[Flask] = []


@contextmanager
def own_database(name: str) -> Iterator[str]:
    """Create ``name`` afresh, migrate it, yield its URL; drop it afterwards, once the apps
    made on it have written their buffered audit rows (else the writer's flush at exit finds
    the database gone and logs the rows as lost)."""
    from models import migrate

    url = BASE.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(BASE, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate.upgrade(url)
        yield url
    finally:
        while _APPS:
            app = _APPS.pop()
            app.extensions["audit"].flush()
            app.extensions["db.engine"].dispose()
        with psycopg.connect(BASE, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_org(conn: psycopg.Connection, seats: int) -> uuid.UUID:
    """A paid organization with ``seats`` seats and SCIM on, inserted directly; its id."""
    return conn.execute(
        "INSERT INTO organizations (id, name, plan, seats, scim_enabled, created) "
        "VALUES (gen_random_uuid(), 'bench', 'paid', %s, true, now()) RETURNING id", (seats,),
    ).fetchone()[0]


def org_with_token(app: Flask, seats: int = 10) -> tuple[uuid.UUID, str]:
    """A paid organization with SCIM on, made through the models, and a SCIM token of it."""
    from models import Organization
    from models.tokens import issue_token

    with app.extensions["db.sessions"]() as session:
        org = Organization(name="bench", plan="paid", seats=seats, scim_enabled=True)
        session.add(org)
        session.flush()
        token, _ = issue_token(session, org)
        session.commit()
        return org.id, token


def app_on(url: str, redis_url: str, **settings: str) -> Flask:
    """Our app on ``url``; ``settings`` adds environment settings (WORKTEAM_...)."""
    from web import create_app

    app = create_app({"ENV_OVERRIDES": {
        "DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": "bench",
        "PUBLIC_URL": "http://127.0.0.1:5000", "SMTP_URL": "smtp://127.0.0.1:1", **settings,
    }})
    _APPS.append(app)
    return app


@contextmanager
def timed_calls(owner: object, name: str) -> Iterator[list[float]]:
    """Inside the block, ``owner.name`` (a function a task calls through its module) is timed:
    the seconds of each call are appended to the yielded list (the prune benches' batches)."""
    original = getattr(owner, name)
    seconds: list[float] = []

    def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    setattr(owner, name, timed)
    try:
        yield seconds
    finally:
        setattr(owner, name, original)
