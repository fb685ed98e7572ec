"""Fixtures of the fault tests: one private stack (PostgreSQL, Redis, gunicorn x2) per module,
and an organization with a token on it. See stack.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from models import migrate
from tests.conftest import TEST_ENV
from tests.faults.stack import Gunicorn, Http, PrivatePostgres, PrivateRedis


@dataclass
class Stack:
    pg: PrivatePostgres
    redis: PrivateRedis
    web: Gunicorn
    env: dict[str, str]

    def make_org(self) -> tuple[uuid.UUID, str]:
        from models import Organization
        from models.db import make_engine, make_session_factory
        from models.tokens import issue_token

        engine = make_engine(self.pg.url, pool_size=1)
        try:
            with make_session_factory(engine)() as session:
                org = Organization(name="Fault org", plan="paid", seats=100_000,
                                   scim_enabled=True)
                session.add(org)
                session.flush()
                raw, _ = issue_token(session, org)
                session.commit()
                return org.id, raw
        finally:
            engine.dispose()

    def client(self, token: str | None = None, timeout: float = 10) -> Http:
        return Http(self.web.port, token, timeout)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    pg = redis = web = None
    try:
        pg, redis = PrivatePostgres(), PrivateRedis()
        pg.start()
        pg.create_database()
        migrate.upgrade(pg.url)
        redis.start()
        env = {
            **TEST_ENV,
            "DATABASE_URL": pg.url,
            "REDIS_URL": redis.url,
            "WORKTEAM_CELERY_QUEUE": f"faults-{uuid.uuid4().hex[:8]}",
            # The load here is the point: no rate limit (it has its own tests).
            "WORKTEAM_RATE_LIMIT": "0",
            "WORKTEAM_DB_POOL_SIZE": "4",
        }
        web = Gunicorn(env)
        web.start()
        yield Stack(pg, redis, web, env)
    finally:  # whatever got started, in reverse order, failing or not
        for part in (web, redis, pg):
            if part is not None:
                part.close()


@pytest.fixture
def org(stack: Stack) -> tuple[str, str]:
    """(Base path, token) of a fresh organization on the private stack."""
    org_id, token = stack.make_org()
    return f"/scim/v2/{org_id}", token
