"""Import pages (unfiltered startIndex pages): totals from the maintained tally, and pages that
continue where the previous one ended (web/scim/positions.py), exact whatever changes between
pages; the tally itself against COUNT(*) through every way users come and go."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
import redis

from models import migrate, store
from tests.conftest import (
    DATABASE_URL,
    REDIS_URL,
    ScimClient,
    insert_org,
    make_org,
    scratch_database,
)
from tests.fixtures_worker import free_port

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
# One user (org_id, userName) written straight to the table, as a script run by hand would.
_INSERT_USER = (
    "INSERT INTO users (id, org_id, user_name, attrs, emails_lower, active, version, created,"
    " last_modified, manager_state, license_state) VALUES (gen_random_uuid(), %s, %s,"
    " '{}'::jsonb, '{}', true, 1, now(), now(), 'none', 'none')"
)


def _tally(app, org_id) -> store.Tally:
    with app.extensions["db.sessions"]() as session:
        return store.user_tally(session, org_id)


def _counted(org_id) -> int:
    with psycopg.connect(DATABASE_URL) as conn:
        return conn.execute("SELECT count(*) FROM users WHERE org_id = %s", (org_id,)).fetchone()[0]


def _in_order(org_id) -> list[str]:
    with psycopg.connect(DATABASE_URL) as conn:
        rows = conn.execute("SELECT id FROM users WHERE org_id = %s ORDER BY seq", (org_id,))
        return [str(r[0]) for r in rows]


def _walk(scim: ScimClient, count: int) -> tuple[list[str], set[int]]:
    """Every page from startIndex=1 on, as an import does; the ids and the totals seen."""
    ids: list[str] = []
    totals: set[int] = set()
    start = 1
    while True:
        body = scim.get(f"/Users?startIndex={start}&count={count}").get_json()
        totals.add(body["totalResults"])
        assert body["startIndex"] == start and body["itemsPerPage"] == len(body["Resources"])
        ids += [r["id"] for r in body["Resources"]]
        if not body["Resources"]:
            return ids, totals
        start += len(body["Resources"])


def _positions(org_id) -> list[bytes]:
    return redis.Redis.from_url(REDIS_URL).keys(f"wt:pos:{org_id}:*")


def test_the_tally_follows_creates_deletes_and_bulk(app, scim):
    org_id = scim.org.id
    assert _tally(app, org_id) == store.Tally(0, 0)
    made = [scim.create_user()["id"] for _ in range(5)]
    assert scim.delete(f"/Users/{made[0]}").status_code == 204
    ops = [{"method": "POST", "path": "/Users", "bulkId": f"b{i}",
            "data": {"schemas": [USER], "userName": f"bulk{i}@example.com"}} for i in range(3)]
    ops.append({"method": "DELETE", "path": f"/Users/{made[1]}"})
    assert scim.post("/Bulk", {"schemas": [BULK], "Operations": ops}).status_code == 200
    # A failed create (a duplicate userName) is rolled back with its count.
    assert scim.post("/Users", {"schemas": [USER], "userName": "bulk0@example.com"}).status_code \
        == 409
    assert _tally(app, org_id) == store.Tally(6, 10) and _counted(org_id) == 6
    assert scim.get("/Users?count=0").get_json()["totalResults"] == 6


def test_the_tally_holds_under_concurrent_creates_and_direct_sql(app, org):
    def create(n: int) -> None:
        client = ScimClient(app.test_client(), org)
        for i in range(n):
            client.create_user(f"c-{uuid.uuid4().hex[:8]}-{i}@example.com")

    threads = [threading.Thread(target=create, args=(15,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with psycopg.connect(DATABASE_URL) as conn:  # rows written by hand count too
        conn.execute("DELETE FROM users WHERE id IN (SELECT id FROM users WHERE org_id = %s "
                     "ORDER BY seq LIMIT 10)", (org.id,))
    assert _tally(app, org.id).users == _counted(org.id) == 80


def test_an_import_walk_is_exact_and_continues_from_recorded_positions(app, scim):
    for i in range(23):
        scim.create_user(f"walk{i:02}@example.com")
    first, totals = _walk(scim, 5)
    assert first == _in_order(scim.org.id) and totals == {23}
    assert len(_positions(scim.org.id)) == 4  # where pages 1-4 ended; the last page reaches 23
    # A page served from a recorded position is the page OFFSET would give.
    again, _ = _walk(scim, 5)
    assert again == first


@pytest.mark.parametrize("change", ["delete", "create", "recreate"])
def test_pages_stay_exact_when_users_change_between_walks(app, scim, change):
    made = [scim.create_user(f"chg{i:02}@example.com")["id"] for i in range(12)]
    _walk(scim, 4)  # records where its pages ended
    if change in ("delete", "recreate"):
        assert scim.delete(f"/Users/{made[1]}").status_code == 204  # shifts every later index
    if change in ("create", "recreate"):
        scim.create_user("late@example.com")
    ids, totals = _walk(scim, 4)
    assert ids == _in_order(scim.org.id)
    assert totals == {len(ids)}


def test_a_recorded_position_is_used_only_for_the_users_it_was_recorded_from(app, scim):
    """A stale position would shift the page: a recorded position must be dropped after every
    insert and delete, or the test above could pass by OFFSET alone."""
    made = [scim.create_user(f"pos{i}@example.com")["id"] for i in range(6)]
    r = redis.Redis.from_url(REDIS_URL)
    changes = _tally(app, scim.org.id).changes
    # Plant a wrong position for index 2 (the seq of the 4th user): the page must follow it.
    with psycopg.connect(DATABASE_URL) as conn:
        fourth = conn.execute("SELECT seq FROM users WHERE id = %s", (made[3],)).fetchone()[0]
    r.set(f"wt:pos:{scim.org.id}:2", f"{changes}:{fourth}", ex=60)
    page = scim.get("/Users?startIndex=3&count=2").get_json()
    assert [u["id"] for u in page["Resources"]] == made[4:6]  # the planted position was used
    scim.delete(f"/Users/{made[5]}")
    page = scim.get("/Users?startIndex=3&count=2").get_json()
    assert [u["id"] for u in page["Resources"]] == made[2:4]  # stale: OFFSET, exact


def test_a_position_that_does_not_parse_is_ignored(scim):
    made = [scim.create_user(f"odd{i}@example.com")["id"] for i in range(4)]
    redis.Redis.from_url(REDIS_URL).set(f"wt:pos:{scim.org.id}:2", "not-a-position", ex=60)
    page = scim.get("/Users?startIndex=3&count=2")
    assert page.status_code == 200
    assert [u["id"] for u in page.get_json()["Resources"]] == made[2:4]


def test_import_pages_without_redis_use_offset(scim, monkeypatch):
    from web import redisconn

    for i in range(7):
        scim.create_user(f"nored{i}@example.com")
    # Redis refuses from here on (a port nobody listens on): pages fall back to OFFSET.
    monkeypatch.setitem(redisconn._clients, REDIS_URL,
                        redis.Redis(host="127.0.0.1", port=free_port(), socket_timeout=0.2))
    try:
        ids, totals = _walk(scim, 3)
        assert REDIS_URL in redisconn.down_until
    finally:
        redisconn.down_until.pop(REDIS_URL, None)
    assert ids == _in_order(scim.org.id) and totals == {7}
    assert _positions(scim.org.id) == []


def test_cursor_pages_take_the_total_from_the_tally(scim):
    for i in range(5):
        scim.create_user(f"cur{i}@example.com")
    body = scim.get("/Users?cursor=&count=2").get_json()
    assert body["totalResults"] == 5
    assert scim.get('/Users?cursor=&count=2&filter=userName sw "cur1"').get_json()[
        "totalResults"] == 1


def test_deleting_an_organization_takes_its_tally(app):
    org = make_org(app)
    scim = ScimClient(app.test_client(), org)
    scim.create_user()
    with psycopg.connect(DATABASE_URL) as conn:
        conn.execute("DELETE FROM organizations WHERE id = %s", (org.id,))
        left = conn.execute("SELECT count(*) FROM user_tallies WHERE org_id = %s",
                            (org.id,)).fetchone()[0]
    assert left == 0


def test_the_migration_counts_existing_users_and_truncate_resets():
    """Its own database: TRUNCATE would take every other test's users."""
    with scratch_database("workteam_tally") as url:
        migrate.upgrade(url, "0007")
        with psycopg.connect(url) as conn:
            org = insert_org(conn, plan="free")
            conn.execute(
                "INSERT INTO users (id, org_id, user_name, attrs, emails_lower, active, version,"
                " created, last_modified, manager_state, license_state) SELECT"
                " gen_random_uuid(), %s, 'u' || i, '{}'::jsonb, '{}', true, 1, now(), now(),"
                " 'none', 'none' FROM generate_series(1, 40) i",
                (org,))
        migrate.upgrade(url)
        with psycopg.connect(url) as conn:
            tally = "SELECT sum(users), sum(changes) FROM user_tallies WHERE org_id = %s"
            assert conn.execute(tally, (org,)).fetchone() == (40, 40)
            conn.execute("TRUNCATE users CASCADE")
            assert conn.execute(tally, (org,)).fetchone() == (0, 41)


def test_a_long_transaction_of_single_row_inserts_keeps_the_tally_small(app, org):
    """One statement per user, 3,000 in one transaction (a backfill script): every statement
    appends a row and every 64th folds them, so the tally is a few rows and no row is updated
    in place thousands of times (which PostgreSQL would walk version by version)."""
    with psycopg.connect(DATABASE_URL) as conn:
        with conn.cursor() as cur:
            cur.executemany(_INSERT_USER, [(org.id, f"bulk{i}") for i in range(3000)])
        rows = conn.execute("SELECT count(*) FROM user_tallies WHERE org_id = %s",
                            (org.id,)).fetchone()[0]
    assert rows < 200
    assert _tally(app, org.id) == store.Tally(3000, 3000) == store.Tally(_counted(org.id), 3000)


def test_a_tally_read_marks_the_rows_folded_away_before_it(app, org):
    """Migration 0016: 3,000 creates, each its own transaction, leave ~3,000 dead tally rows
    until VACUUM. A read of the tally steps over their index entries with an index scan and
    marks them dead, so the reads after it skip them. (A bitmap scan, as PostgreSQL planned the
    plain read, marked none and visited all of them on every read.)"""
    # What a bitmap scan of the organization's index entries finds: those not marked dead.
    live_entries = (
        "EXPLAIN (ANALYZE, FORMAT JSON) SELECT sum(users) FROM user_tallies WHERE org_id = %s")

    def entries(conn) -> int:
        conn.execute("SET enable_indexscan = off; SET enable_seqscan = off")
        plan = conn.execute(live_entries, (org.id,)).fetchone()[0][0]["Plan"]
        while plan["Node Type"] != "Bitmap Index Scan":
            plan = plan["Plans"][0]
        return plan["Actual Rows"]

    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        # The folds planned without index scans mark nothing either (a fold's DELETE marks the
        # entries it passes when its connection planned it as an index scan).
        conn.execute("SET enable_indexscan = off")
        with conn.cursor() as cur:
            for i in range(3000):
                cur.execute(_INSERT_USER, (org.id, f"fold{i}"), prepare=True)
        before = entries(conn)
        assert _tally(app, org.id) == store.Tally(3000, 3000)
        after = entries(conn)
    assert before > 2900
    assert after < 100


def test_seq_is_indexed_only_behind_its_owner(app):
    """Migration 0009: an index on seq alone let PostgreSQL read every earlier organization's
    users (or group's members) to find the first page of a later one: its statistics assume
    them interleaved."""
    with psycopg.connect(DATABASE_URL) as conn:
        defs = [r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes"
            " WHERE tablename IN ('users', 'groups', 'memberships')")]
    for owner in ("users USING btree (org_id, seq)", "groups USING btree (org_id, seq)",
                  "memberships USING btree (group_id, seq)"):
        assert [d for d in defs if owner in d], owner
    assert not [d for d in defs if d.endswith("(seq)")], defs
