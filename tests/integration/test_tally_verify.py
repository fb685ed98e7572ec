"""The tally check (tasks/tallies.py, models/tallies.py): a tally of users that drifted from the
users it counts is found and corrected, with a warning, once, and the license check then gives
the seats it was holding back; a right tally is left as it is."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from models import migrate
from tests.conftest import RUN_ID, app_on, insert_org, scratch_database
from tests.fixtures_worker import wait_until

INSERT = (
    "INSERT INTO users (id, org_id, user_name, attrs, emails_lower, active, version, created,"
    " last_modified, manager_state, license_state) SELECT gen_random_uuid(), %s, %s || i,"
    " '{}'::jsonb, '{}', true, 1, now(), now(), 'none', %s FROM generate_series(1, %s) i"
)
# What a statement run by hand, or a writer that forgot its delta, would leave behind.
DRIFT = (
    "INSERT INTO user_tallies (org_id, users, changes, licensed, waiting)"
    " VALUES (%s, %s, 0, %s, %s)"
)
TALLY = (
    "SELECT coalesce(sum(users), 0), coalesce(sum(licensed), 0), coalesce(sum(waiting), 0),"
    " coalesce(sum(changes), 0), count(*) FROM user_tallies WHERE org_id = %s"
)
COUNTS = (
    "SELECT count(*), count(*) FILTER (WHERE license_state = 'licensed'),"
    " count(*) FILTER (WHERE license_state = 'unlicensed') FROM users WHERE org_id = %s"
)


@pytest.fixture
def database() -> Iterator[str]:
    """A database of its own: the check recounts every organization there is."""
    with scratch_database("workteam_tally_verify") as url:
        migrate.upgrade(url)
        yield url


def tally(url: str, org: uuid.UUID) -> tuple[int, ...]:
    """(users, licensed, waiting, changes, rows) of the organization's tally."""
    with psycopg.connect(url) as conn:
        return conn.execute(TALLY, (org,)).fetchone()


def counted(url: str, org: uuid.UUID) -> tuple[int, ...]:
    with psycopg.connect(url) as conn:
        return conn.execute(COUNTS, (org,)).fetchone()


def plant(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Two organizations of 12 licensed, 5 waiting and 13 unlicensed users; the first one's
    tally then drifts by +3 users, +2 licensed, -1 waiting."""
    with psycopg.connect(url, autocommit=True) as conn:
        orgs = (insert_org(conn, seats=20), insert_org(conn, seats=20))
        for org in orgs:
            for prefix, state, n in (("l", "licensed", 12), ("w", "unlicensed", 5),
                                     ("n", "none", 13)):
                conn.execute(INSERT, (org, prefix, state, n))
        conn.execute(DRIFT, (orgs[0], 3, 2, -1))
    return orgs


def test_a_drifted_tally_is_corrected_once_and_a_right_one_left(database, caplog) -> None:
    from tasks import tallies

    drifted, right = plant(database)
    assert tally(database, drifted)[:3] == (33, 14, 4)
    before = tally(database, right)
    app = app_on(database)
    with app.app_context(), caplog.at_level(logging.WARNING, "workteam.tallies"):
        assert tallies.verify() == 1
        assert tallies.verify() == 0
    assert tally(database, drifted)[:3] == counted(database, drifted) == (30, 12, 5)
    # `changes` moved, so no import position recorded against the wrong count is used again.
    assert tally(database, drifted)[3] == 30 + 3
    assert tally(database, right) == before  # not a row written
    assert [r.getMessage() for r in caplog.records] == [
        f"org {drifted}: the tally of users was off (corrected by -3 users, -2 licensed, "
        "+1 waiting)"]
    app.extensions["db.engine"].dispose()


def test_the_license_check_gives_the_seats_a_drifted_tally_held_back(database) -> None:
    """The check reads its seats taken from the tally: counted as full, it gives none."""
    from models import licensing
    from tasks import tallies

    with psycopg.connect(database, autocommit=True) as conn:
        org = insert_org(conn, seats=5)
        conn.execute(INSERT, (org, "u", "none", 5))
        conn.execute(DRIFT, (org, 0, 5, 0))
    app = app_on(database)
    sessions = app.extensions["db.sessions"]
    with app.app_context():
        with sessions() as session:
            assert licensing.reconcile(session, org).licensed == []
            session.commit()
        assert counted(database, org) == (5, 0, 5)  # all wait, with every seat free
        assert tallies.verify() == 1
        with sessions() as session:
            assert len(licensing.reconcile(session, org).licensed) == 5
            session.commit()
    assert counted(database, org) == (5, 5, 0)
    assert tally(database, org)[:3] == (5, 5, 0)
    app.extensions["db.engine"].dispose()


def test_two_recounts_at_once_correct_the_difference_once(database) -> None:
    """The tally is locked here until both are waiting: the first to take the organization's
    lock has counted and waits to append its correction, the other waits for that lock, and
    then counts after the first committed and finds nothing left to correct. (Without the
    organization's lock both counted the same difference and appended it twice.)"""
    from models import tallies

    drifted, _ = plant(database)
    app = app_on(database)
    sessions = app.extensions["db.sessions"]
    found: list[tallies.Drift] = []

    def recount() -> None:
        with sessions() as session:
            found.append(tallies.recount(session, drifted))
            session.commit()

    with psycopg.connect(database) as holder:
        holder.execute("LOCK TABLE user_tallies IN EXCLUSIVE MODE")  # reads go on, appends wait
        threads = [threading.Thread(target=recount) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_until(lambda: waiting_on_lock(database) == 2, timeout=10)
        holder.rollback()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(found, key=bool) == [tallies.Drift(), tallies.Drift(-3, -2, 1)]
    assert tally(database, drifted)[:3] == counted(database, drifted)
    app.extensions["db.engine"].dispose()


def waiting_on_lock(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'").fetchone()[0]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_beat_corrects_the_tally_through_the_worker(database, start_worker) -> None:
    drifted, _ = plant(database)
    start_worker(env={"DATABASE_URL": database, "WORKTEAM_TALLY_VERIFY_SECONDS": "1",
                      "WORKTEAM_CELERY_QUEUE": f"wt-{RUN_ID}-tally-verify"},
                 concurrency=1, beat=True)
    wait_until(lambda: tally(database, drifted)[:3] == counted(database, drifted), timeout=60)
