"""Audit retention: rows older than WORKTEAM_AUDIT_RETENTION_DAYS are deleted, oldest first, by
the task beat schedules (tasks/audit.py); newer rows and a retention of 0 keep everything.
In a database of its own: the rule reads the oldest rows of the whole table."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from models import migrate
from tests.conftest import RUN_ID, app_on, insert_org, scratch_database
from tests.fixtures_worker import wait_until

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def database() -> Iterator[str]:
    with scratch_database("workteam_audit") as url:
        migrate.upgrade(url)
        yield url


def plant(url: str, ages_in_days: list[float]) -> uuid.UUID:
    """One organization and an audit row per age, appended oldest first (as requests are)."""
    with psycopg.connect(url, autocommit=True) as conn:
        org = insert_org(conn)
        with conn.cursor().copy("COPY audit_events (org_id, method, path, status, duration_ms, "
                                "created) FROM STDIN") as copy:
            for age in sorted(ages_in_days, reverse=True):
                copy.write_row((org, "GET", "/Users", 200, 1.0, NOW - dt.timedelta(days=age)))
    return org


def ages(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT created FROM audit_events ORDER BY id").fetchall()
    return [round((NOW - created).total_seconds() / 86400) for (created,) in rows]


def test_prune_deletes_what_is_older_than_the_retention_in_batches(database):
    from models import audit

    plant(database, [400] * 25 + [120, 91, 89, 30, 1, 0])
    app = app_on(database)
    cutoff = NOW - dt.timedelta(days=90)
    with app.app_context(), app.extensions["db.sessions"]() as session:
        assert audit.prune(session, cutoff, batch=10) == 10  # the batch's id range only
        session.commit()
        while audit.prune(session, cutoff, batch=10):
            session.commit()
    assert ages(database) == [89, 30, 1, 0]
    app.extensions["db.engine"].dispose()


@pytest.mark.parametrize(("days", "left"), [("90", [89, 1]), ("0", [365, 120, 89, 1])])
def test_the_task_keeps_the_configured_days(database, days, left):
    from tasks import audit

    plant(database, [365, 120, 89, 1])
    app = app_on(database, WORKTEAM_AUDIT_RETENTION_DAYS=days)
    with app.app_context():
        assert audit.prune() == 4 - len(left)
    assert ages(database) == left
    app.extensions["db.engine"].dispose()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_beat_prunes_through_the_worker(database, worker_env, start_worker):
    """Beat schedules the prune and a real worker runs it (its own queue and database)."""
    plant(database, [200, 100, 10])
    start_worker(env={"DATABASE_URL": database, "WORKTEAM_AUDIT_RETENTION_DAYS": "30",
                      "WORKTEAM_AUDIT_PRUNE_SECONDS": "1",
                      "WORKTEAM_CELERY_QUEUE": f"wt-{RUN_ID}-audit"},
                 concurrency=1, beat=True)
    wait_until(lambda: ages(database) == [10], timeout=60)
