"""Per-token rate limits in Redis: 429 SCIM error with Retry-After over the limit, per
organization override, defaults above Entra's 25 requests/s, fail-open without Redis."""

from __future__ import annotations

import time

from models import Organization
from tests.conftest import TEST_ENV, ScimClient, make_org
from tests.fixtures_worker import free_port
from tests.hardening.helpers import assert_scim_error


def _set_rate(app, org_id, rate):
    with app.extensions["db.sessions"]() as session:
        session.get(Organization, org_id).rate_limit = rate
        session.commit()


def test_over_the_limit_is_429_with_retry_after(client, app):
    org = make_org(app)
    _set_rate(app, org.id, 2)  # 2/s, bursts of 4 (WORKTEAM_RATE_BURST_SECONDS=2)
    scim = ScimClient(client, org)
    statuses = [scim.get("/Users").status_code for _ in range(8)]
    assert statuses[:4] == [200] * 4
    assert 429 in statuses[4:]
    response = scim.get("/Users")
    body = assert_scim_error(response, 429)
    assert "per second" in body["detail"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 2
    # Other organizations' tokens are not affected.
    assert ScimClient(client, make_org(app)).get("/Users").status_code == 200
    time.sleep(retry_after)
    assert scim.get("/Users").status_code == 200


def test_limit_is_per_token_and_writes_count_too(client, app):
    org = make_org(app)
    _set_rate(app, org.id, 1)
    scim = ScimClient(client, org)
    scim.create_user()
    scim.create_user()
    response = scim.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                    "userName": "third@example.com"})
    assert_scim_error(response, 429)
    # Refused before anything was written.
    assert scim.get("/Users", query_string={"filter": 'userName eq "third@example.com"'},
                    ).status_code in (200, 429)
    time.sleep(2.1)
    listed = scim.get("/Users", query_string={"filter": 'userName eq "third@example.com"'})
    assert listed.get_json()["totalResults"] == 0


def test_zero_rate_switches_the_limit_off(client, app):
    org = make_org(app)
    _set_rate(app, org.id, 0)
    scim = ScimClient(client, org)
    assert all(scim.get("/Users").status_code == 200 for _ in range(30))


def test_default_allows_entra_25_per_second(client, app):
    assert app.config["RATE_LIMIT"] >= 25
    scim = ScimClient(client, make_org(app))
    # 25 requests/s paced for 2 s, after a burst of 25 at once: never refused.
    statuses = [scim.get("/Users").status_code for _ in range(25)]
    started = time.monotonic()
    for i in range(50):
        time.sleep(max(0.0, started + i / 25 - time.monotonic()))
        statuses.append(scim.get("/Users").status_code)
    assert set(statuses) == {200}


def test_redis_down_fails_open(app_env):
    from web import create_app
    from web.redisconn import down_until

    env = {**app_env, "WORKTEAM_RATE_LIMIT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
           "WORKTEAM_RATE_LIMIT": "1"}
    broken = create_app({"ENV_OVERRIDES": env, "TESTING": True})
    try:
        org = make_org(broken)
        scim = ScimClient(broken.test_client(), org)
        started = time.monotonic()
        assert all(scim.get("/Users").status_code == 200 for _ in range(10))
        assert time.monotonic() - started < 5  # Redis is not waited for on every request
    finally:
        broken.extensions["db.engine"].dispose()
        down_until.pop(env["WORKTEAM_RATE_LIMIT_REDIS_URL"], None)
    assert TEST_ENV["REDIS_URL"] != env["WORKTEAM_RATE_LIMIT_REDIS_URL"]


def test_limit_holds_after_redis_forgets_the_script(client, app):
    # A restarted or flushed Redis has no GCRA script: EVALSHA fails with NOSCRIPT, the
    # limiter loads it again and the request is still counted.
    from web.redisconn import client as redis_client

    org = make_org(app)
    _set_rate(app, org.id, 2)  # bursts of 4
    scim = ScimClient(client, org)
    assert scim.get("/Users").status_code == 200
    redis_client(app.config["RATE_LIMIT_REDIS_URL"]).script_flush()
    statuses = [scim.get("/Users").status_code for _ in range(7)]
    assert statuses[:3] == [200] * 3
    assert 429 in statuses[3:]


def test_limit_holds_after_redis_drops_the_connection(client, app):
    # A Redis restart or its client timeout closes the limiter's connection: the next request
    # opens a new one and is counted, and the limiter does not rest (fail open) meanwhile.
    from web.redisconn import available, own_client
    from web.redisconn import client as redis_client

    url = app.config["RATE_LIMIT_REDIS_URL"]
    org = make_org(app)
    _set_rate(app, org.id, 2)  # bursts of 4
    scim = ScimClient(client, org)
    assert scim.get("/Users").status_code == 200
    # The test client serves requests on this thread, so this is the limiter's connection.
    limiter_id = own_client(url).client_id()
    assert redis_client(url).client_kill_filter(_id=limiter_id) == 1
    statuses = [scim.get("/Users").status_code for _ in range(7)]
    assert available(url)
    assert statuses[:3] == [200] * 3
    assert 429 in statuses[3:]
    assert own_client(url).client_id() != limiter_id
