"""The per-process cache of checked tokens (web/scim/auth.py): a warm token is not read from
the database again, and every change of credentials still takes effect on the next request,
because the organization's credentials generation in Redis is renewed after the commit."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import event

from models import Organization
from models.tokens import hash_token, issue_token
from tests.conftest import TEST_ENV, make_org
from tests.fixtures_worker import free_port
from web.scim import auth


@pytest.fixture
def token_reads(app):
    """The statements that read scim_tokens since the fixture started (the audit writer's
    last_used UPDATE is not a read)."""
    seen: list[str] = []

    def _count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("SELECT") and "FROM scim_tokens" in statement:
            seen.append(statement)

    engine = app.extensions["db.engine"]
    event.listen(engine, "before_cursor_execute", _count)
    yield seen
    event.remove(engine, "before_cursor_execute", _count)


def _get(client, org, token=None):
    return client.get(f"{org.base}/Users",
                      headers={"Authorization": f"Bearer {token or org.token}"})


def _cached(org, token=None) -> bool:
    return (org.id, hash_token(token or org.token)) in auth._cache


def test_a_warm_token_is_not_read_again(client, org, token_reads):
    assert _get(client, org).status_code == 200
    assert _cached(org)
    reads = len(token_reads)
    for _ in range(5):
        assert _get(client, org).status_code == 200
    assert len(token_reads) == reads


def test_a_new_token_revokes_a_cached_one_on_the_next_request(client, app, org):
    assert _get(client, org).status_code == 200 and _cached(org)
    with app.extensions["db.sessions"]() as session:
        raw, _ = issue_token(session, session.get(Organization, org.id))
        session.commit()
    assert _get(client, org).status_code == 401
    assert _get(client, org, raw).status_code == 200


@pytest.mark.parametrize(
    ("change", "status"),
    [({"scim_enabled": False}, 403), ({"plan": "free"}, 403), ({"rate_limit": 1}, None)],
)
def test_settings_changes_reach_a_cached_token_at_once(client, app, change, status):
    org = make_org(app)
    assert _get(client, org).status_code == 200 and _cached(org)
    with app.extensions["db.sessions"]() as session:
        row = session.get(Organization, org.id)
        for name, value in change.items():
            setattr(row, name, value)
        session.commit()
    if status is not None:
        assert _get(client, org).status_code == status
    else:  # 1 request/s, bursts of 2: the third request at once is refused
        assert [_get(client, org).status_code for _ in range(3)][-1] == 429


def test_a_change_rolled_back_keeps_the_cache(client, app, org, token_reads):
    assert _get(client, org).status_code == 200
    with app.extensions["db.sessions"]() as session:
        session.get(Organization, org.id).scim_enabled = False
        session.flush()
        session.rollback()
    reads = len(token_reads)
    assert _get(client, org).status_code == 200
    assert len(token_reads) == reads


def test_an_unrelated_organization_change_keeps_the_cache(client, app, org, token_reads):
    assert _get(client, org).status_code == 200
    with app.extensions["db.sessions"]() as session:
        session.get(Organization, org.id).seats = 7
        session.commit()
    reads = len(token_reads)
    assert _get(client, org).status_code == 200
    assert len(token_reads) == reads


def test_an_overlapping_old_token_stops_at_its_deadline_even_when_cached(client, app, org):
    with app.extensions["db.sessions"]() as session:
        raw, _ = issue_token(session, session.get(Organization, org.id),
                             overlap=dt.timedelta(seconds=1.5))
        session.commit()
    assert _get(client, org).status_code == 200 and _cached(org)
    assert _get(client, org, raw).status_code == 200
    time.sleep(1.6)
    assert _get(client, org).status_code == 401
    assert _get(client, org, raw).status_code == 200


def test_without_redis_nothing_is_cached_and_revocation_holds(app_env):
    from web import create_app
    from web.redisconn import down_until

    env = {**app_env, "WORKTEAM_RATE_LIMIT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    broken = create_app({"ENV_OVERRIDES": env, "TESTING": True})
    try:
        org = make_org(broken)
        client = broken.test_client()
        assert _get(client, org).status_code == 200
        assert not _cached(org)
        with broken.extensions["db.sessions"]() as session:
            issue_token(session, session.get(Organization, org.id))
            session.commit()
        assert _get(client, org).status_code == 401
    finally:
        broken.extensions["db.engine"].dispose()
        down_until.pop(env["WORKTEAM_RATE_LIMIT_REDIS_URL"], None)
    assert TEST_ENV["REDIS_URL"] != env["WORKTEAM_RATE_LIMIT_REDIS_URL"]
