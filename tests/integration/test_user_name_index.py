"""Migration 0014 rebuilds the unique index of user names with text_pattern_ops: on a database
with users, it keeps them unique regardless of case, replaces what an interrupted build left,
goes back, and lets the service write while it runs."""

from __future__ import annotations

import threading

import psycopg
import pytest

from models import migrate
from tests.conftest import insert_org, scratch_database
from tests.fixtures_worker import wait_until

INDEX_DEF = "SELECT indexdef FROM pg_indexes WHERE indexname = %s"
INSERT = (
    "INSERT INTO users (id, org_id, user_name, attrs, emails_lower, active, version, created,"
    " last_modified, manager_state, license_state) VALUES (gen_random_uuid(), %s, %s, '{}',"
    " '{}', true, 1, now(), now(), 'none', 'none')"
)


def test_the_migration_rebuilds_the_index_and_goes_back():
    with scratch_database("workteam_user_name") as url:
        migrate.upgrade(url, "0013")
        with psycopg.connect(url, autocommit=True) as conn:
            org = insert_org(conn)
            for name in ("Ann@Example.com", "bob@example.com"):
                conn.execute(INSERT, (org, name))
            # What an interrupted build leaves behind: an invalid index (this one fails on the
            # two users of one organization).
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute("CREATE UNIQUE INDEX CONCURRENTLY uq_users_org_user_name_building"
                             " ON users (org_id)")
            assert conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid"
                                ).fetchone()[0] == 1
        migrate.upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            (definition,) = conn.execute(INDEX_DEF, ("uq_users_org_user_name",)).fetchone()
            assert "lower(user_name) text_pattern_ops" in definition
            assert definition.startswith("CREATE UNIQUE INDEX")
            assert conn.execute(INDEX_DEF, ("uq_users_org_user_name_building",)).fetchone() is None
            assert conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()[
                0] == 0
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute(INSERT, (org, "ANN@example.COM"))
        migrate.downgrade(url, "0013")
        with psycopg.connect(url, autocommit=True) as conn:
            (definition,) = conn.execute(INDEX_DEF, ("uq_users_org_user_name",)).fetchone()
            assert definition.endswith("(org_id, lower(user_name))")
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute(INSERT, (org, "BOB@example.com"))


def test_a_migration_stopped_after_the_old_index_went_is_taken_up() -> None:
    """Its steps commit one by one: a release that died after dropping the old index left only
    the new one, under its temporary name, which the next run renames."""
    with scratch_database("workteam_user_name_resume") as url:
        migrate.upgrade(url, "0013")
        with psycopg.connect(url, autocommit=True) as conn:
            org = insert_org(conn)
            conn.execute(INSERT, (org, "Ann@Example.com"))
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY uq_users_org_user_name_building"
                         " ON users (org_id, lower(user_name) text_pattern_ops)")
            conn.execute("DROP INDEX CONCURRENTLY uq_users_org_user_name")
        migrate.upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            (definition,) = conn.execute(INDEX_DEF, ("uq_users_org_user_name",)).fetchone()
            assert "text_pattern_ops" in definition
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute(INSERT, (org, "ann@example.com"))


def test_the_migration_lets_writes_go_on_while_it_waits() -> None:
    """A release runs the migration while the service reads and writes. Waiting for a
    transaction that has read users (a re-sync's batch, a recount), it must not hold new writes
    back: a plain DROP INDEX queues for the table's ACCESS EXCLUSIVE lock, and every request
    after it queues behind that (here the write gave up after 3 s)."""
    with scratch_database("workteam_user_name_live") as url:
        migrate.upgrade(url, "0013")
        with psycopg.connect(url, autocommit=True) as conn:
            org = insert_org(conn)
        with psycopg.connect(url) as reading:  # a transaction in flight that read users
            reading.execute("SELECT count(*) FROM users")
            release = threading.Thread(target=migrate.upgrade, args=(url,))
            release.start()
            with psycopg.connect(url, autocommit=True) as conn:
                wait_until(lambda: conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'").fetchone()[0] == 1, timeout=10)
                conn.execute("SET lock_timeout = '3s'")
                conn.execute(INSERT, (org, "meanwhile@example.com"))  # not held back
            reading.commit()
        release.join(timeout=30)
        assert not release.is_alive()
        with psycopg.connect(url, autocommit=True) as conn:
            (definition,) = conn.execute(INDEX_DEF, ("uq_users_org_user_name",)).fetchone()
            assert "text_pattern_ops" in definition
            assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 1
