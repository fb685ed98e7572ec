"""Outbox retention: finished jobs and sent-mail records older than
WORKTEAM_OUTBOX_RETENTION_DAYS are deleted (tasks/outbox.py ``prune``), except what is still
needed (models/outbox.py): unfinished jobs, re-syncs, pending mail records and welcome records;
a user licensed again after its welcome job went gets no second welcome; and re-sync exports go
too, unless a live re-sync reads one."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import delete

from models import migrate
from models.outbox import Job, SentMail, prunable_jobs, prunable_mail
from tests.conftest import (
    RUN_ID,
    ScimClient,
    app_on,
    insert_org,
    make_org,
    scratch_database,
)
from tests.fixtures_worker import wait_until
from tests.integration.worker_helpers import (
    all_jobs_settled,
    jobs_of,
    mails_of,
    person,
    set_active,
)

NOW = dt.datetime.now(dt.UTC)

# (age in days, kind, state): appended oldest first, as the outbox writes them.
JOBS = [
    (400, "mail.send", "done"),
    (400, "resync", "done"),
    (300, "licenses.check", "failed"),
    (200, "managers.resolve_org", "pending"),
    (120, "resync", "cancelled"),
    (100, "mail.deactivated", "cancelled"),
    (90, "licenses.check", "done"),
    (45, "resync", "running"),
    (31, "mail.send", "done"),
    (29, "mail.send", "done"),
    (1, "licenses.check", "done"),
]
KEPT_JOBS = [
    (400, "resync"), (300, "licenses.check"), (200, "managers.resolve_org"), (120, "resync"),
    (45, "resync"), (29, "mail.send"), (1, "licenses.check"),
]
# (age in days, template, state)
MAILS = [
    (400, "welcome", "sent"),
    (400, "deactivated", "sent"),
    (200, "overflow", "dropped"),
    (100, "deactivated", "pending"),
    (40, "welcome", "dropped"),
    (31, "deactivated", "sent"),
    (2, "deactivated", "sent"),
]
KEPT_MAILS = [(400, "welcome"), (100, "deactivated"), (40, "welcome"), (2, "deactivated")]


@pytest.fixture
def database() -> Iterator[str]:
    """A database of its own: the walk starts at the oldest row of the whole table."""
    with scratch_database("workteam_outbox_retention") as url:
        migrate.upgrade(url)
        yield url


def plant(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        org = insert_org(conn)
        for n, (age, kind, state) in enumerate(JOBS):
            at = NOW - dt.timedelta(days=age)
            conn.execute(
                "INSERT INTO jobs (org_id, kind, dedup_key, payload, state, attempts, "
                "progress_done, progress_total, created, updated) "
                "VALUES (%s, %s, %s, '{}', %s, 1, 0, 0, %s, %s)",
                (org, kind, f"{kind}:{n}", state, at, at),
            )
        for n, (age, template, state) in enumerate(MAILS):
            conn.execute(
                "INSERT INTO sent_mail (org_id, event_key, template, recipient, state, created) "
                "VALUES (%s, %s, %s, '', %s, %s)",
                (org, f"{template}:{n}", template, state, NOW - dt.timedelta(days=age)),
            )


def left(url: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    def age(at: dt.datetime) -> int:
        return round((NOW - at).total_seconds() / 86400)

    with psycopg.connect(url) as conn:
        jobs = conn.execute("SELECT created, kind FROM jobs ORDER BY id").fetchall()
        mails = conn.execute("SELECT created, template FROM sent_mail ORDER BY id").fetchall()
    return [(age(c), k) for c, k in jobs], [(age(c), t) for c, t in mails]


@pytest.mark.parametrize("batch", [2, 10_000])
def test_prune_keeps_what_is_still_needed(database, batch, monkeypatch) -> None:
    """In windows of 2 ids, the walk steps over the kept rows (a failed job, a pending one,
    re-syncs) and goes on; it stops at the first row younger than the retention."""
    from models import outbox as outbox_rows
    from tasks import outbox

    plant(database)
    real = outbox_rows.prune_from
    windows: list[int | None] = []

    def counted(session, model, start, cutoff, **_):  # type: ignore[no-untyped-def]
        windows.append(start)
        return real(session, model, start, cutoff, batch=batch)

    monkeypatch.setattr(outbox, "prune_from", counted)
    app = app_on(database)
    with app.app_context():
        assert outbox.prune() == (len(JOBS) - len(KEPT_JOBS)) + (len(MAILS) - len(KEPT_MAILS))
    assert left(database) == (KEPT_JOBS, KEPT_MAILS)
    if batch == 2:
        # Jobs: windows from the 1st, 3rd, ... 9th row (the 10th is 29 days old: stop);
        # mail records: the 1st, 3rd, 5th (the 7th is 2 days old).
        assert len(windows) == 5 + 3
    app.extensions["db.engine"].dispose()


def test_a_retention_of_zero_keeps_everything(database) -> None:
    from tasks import outbox

    plant(database)
    before = left(database)
    app = app_on(database)
    app.config["WORKTEAM_OUTBOX_RETENTION_DAYS"] = "0"  # tasks/settings.py reads it there
    with app.app_context():
        assert outbox.prune() == 0
    assert left(database) == before
    app.extensions["db.engine"].dispose()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_beat_prunes_through_the_worker(database, start_worker) -> None:
    """Beat schedules the prune and a real worker runs it (its own queue and database)."""
    plant(database)
    start_worker(env={"DATABASE_URL": database, "WORKTEAM_OUTBOX_PRUNE_SECONDS": "1",
                      "WORKTEAM_CELERY_QUEUE": f"wt-{RUN_ID}-outbox-prune"},
                 concurrency=1, beat=True)
    wait_until(lambda: left(database) == (KEPT_JOBS, KEPT_MAILS), timeout=60)


@pytest.mark.usefixtures("worker")
def test_no_second_welcome_after_the_welcome_job_was_pruned(worker_app, smtp_server) -> None:
    """The welcome job goes with the rest; its record stays, so a user who loses the seat and
    gets one again (a new welcome job: its key is free) is not welcomed twice."""
    scim = ScimClient(worker_app.test_client(), make_org(worker_app, seats=10))
    user = person(scim, "again")
    wait_until(lambda: smtp_server.to(user["userName"]))
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    # What the prune deletes of this organization once everything is past the retention.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    with worker_app.extensions["db.sessions"]() as session:
        session.execute(delete(Job).where(Job.org_id == scim.org.id, prunable_jobs(later)))
        session.execute(delete(SentMail).where(SentMail.org_id == scim.org.id,
                                               prunable_mail(later)))
        session.commit()
    assert jobs_of(worker_app, scim.org.id, "mail.send") == []
    assert [m.template for m in mails_of(worker_app, scim.org.id)] == ["welcome"]

    set_active(scim, user["id"], False)
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    set_active(scim, user["id"], True)
    wait_until(lambda: [j for j in jobs_of(worker_app, scim.org.id, "mail.send")
                        if j.payload["template"] == "welcome" and j.state == "done"])
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    assert len(smtp_server.to(user["userName"])) == 1


def test_exports_go_with_the_retention_unless_a_live_resync_reads_one(database) -> None:
    """A re-sync export holds a directory's user names: past the retention it goes, unless a
    re-sync still pending or running reads it; a dry run whose export went cannot be applied
    and says so."""
    from models.organization import Organization
    from tasks import outbox
    from web.admin import actions

    def export(conn: psycopg.Connection, org: uuid.UUID, age: int) -> uuid.UUID:
        return conn.execute(
            "INSERT INTO resync_exports (id, org_id, filename, row_count, entries, created) "
            "VALUES (gen_random_uuid(), %s, 'okta.csv', 1, "
            "'[[\"ann@example.com\", null, true]]', %s) RETURNING id",
            (org, NOW - dt.timedelta(days=age))).fetchone()[0]

    def resync(conn: psycopg.Connection, org: uuid.UUID, state: str, export_id: uuid.UUID,
               n: int) -> None:
        conn.execute(
            "INSERT INTO jobs (org_id, kind, dedup_key, payload, state, attempts, "
            "progress_done, progress_total, created, updated) VALUES (%s, 'resync', %s, "
            "jsonb_build_object('export_id', %s::text, 'dry_run', true), %s, 1, 0, 0, %s, %s)",
            (org, f"resync:{n}", str(export_id), state, NOW, NOW))

    with psycopg.connect(database, autocommit=True) as conn:
        org = insert_org(conn)
        old, read, recent = export(conn, org, 40), export(conn, org, 45), export(conn, org, 2)
        resync(conn, org, "done", old, 1)
        resync(conn, org, "running", read, 2)
    app = app_on(database)
    with app.app_context():
        assert outbox.prune() == 1
    with psycopg.connect(database) as conn:
        left = {row[0] for row in conn.execute("SELECT id FROM resync_exports")}
    assert left == {read, recent}
    with app.app_context(), app.extensions["db.sessions"]() as session:
        organization = session.get(Organization, org)
        with pytest.raises(actions.ActionError, match="not kept any more: upload it again"):
            actions.start_resync(session, organization, dry_run=False, export_id=old)
    app.extensions["db.engine"].dispose()
