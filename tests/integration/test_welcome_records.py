"""A welcome record (sent_mail, one per user ever) holds the user's email address: it goes when
the user is deleted (models/outbox.py ``forget_welcome``), and migration 0015 deletes those of
the users deleted before it."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from sqlalchemy import text

from models import migrate
from tests.conftest import ScimClient, insert_org, make_org, scratch_database
from tests.fixtures_worker import wait_until
from tests.integration.worker_helpers import all_jobs_settled, jobs_of, mails_of, person


def _waits_on_a_lock(app, query: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether a backend of the test database waits on a lock in a statement LIKE ``query``."""
    with app.extensions["db.sessions"]() as other:
        return bool(other.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE :query"), {"query": query}))


@pytest.mark.usefixtures("worker")
def test_deleting_a_user_deletes_its_welcome_record(worker_app, smtp_server) -> None:
    scim = ScimClient(worker_app.test_client(), make_org(worker_app, seats=10))
    stays, goes = person(scim, "stays"), person(scim, "goes")
    wait_until(lambda: smtp_server.to(stays["userName"]) and smtp_server.to(goes["userName"]))
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    assert sorted(m.recipient for m in mails_of(worker_app, scim.org.id)) == sorted(
        [stays["userName"], goes["userName"]])

    assert scim.delete(f"/Users/{goes['id']}").status_code == 204
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    assert [(m.event_key, m.recipient) for m in mails_of(worker_app, scim.org.id)] == [
        (f"welcome:{stays['id']}", stays["userName"])]


@pytest.mark.usefixtures("worker")
def test_a_user_deleted_while_its_welcome_is_sent_leaves_no_record(worker_app,
                                                                    smtp_server) -> None:
    """The relay holds the welcome's RCPT for 3 s (under the worker's 5 s timeout) while the
    user is deleted: the DELETE answers without waiting for the relay, the mail already on its
    way goes out, and its record (with the address) goes too. Before, the deletion could not
    see the record, uncommitted, and it stayed for good."""
    scim = ScimClient(worker_app.test_client(), make_org(worker_app, seats=10))
    smtp_server.hold_rcpt.set()
    release = threading.Timer(3.0, smtp_server.hold_rcpt.clear)
    try:
        smtp_server.rcpt_held.clear()
        goes = person(scim, "in-flight")
        assert smtp_server.rcpt_held.wait(30), "the welcome mail never reached RCPT"
        release.start()
        started = time.monotonic()
        assert scim.delete(f"/Users/{goes['id']}").status_code == 204
        took = time.monotonic() - started
    finally:
        release.cancel()
        smtp_server.hold_rcpt.clear()
    assert took < 1.5, f"the DELETE waited {took:.1f} s for the SMTP send"
    wait_until(lambda: smtp_server.to(goes["userName"]))  # it was on its way: it goes out
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    assert [m.event_key for m in mails_of(worker_app, scim.org.id)] == []


@pytest.mark.usefixtures("worker")
def test_a_welcome_finishing_during_a_deletion_waits_for_it(worker_app, smtp_server) -> None:
    """The deletion has not committed when the send finishes: the send waits for it on the
    user's row, then finds the user gone and deletes its record. A send that only looked
    would have seen the user, kept the record, and the deletion could not have seen it."""
    from models import store
    from models.user import User

    scim = ScimClient(worker_app.test_client(), make_org(worker_app, seats=10))
    smtp_server.hold_rcpt.set()
    try:
        smtp_server.rcpt_held.clear()
        goes = person(scim, "deleting")
        assert smtp_server.rcpt_held.wait(30), "the welcome mail never reached RCPT"
        with worker_app.app_context(), worker_app.extensions["db.sessions"]() as session:
            store.delete_user(session, session.get(User, uuid.UUID(goes["id"])), paid=True)
            smtp_server.hold_rcpt.clear()  # the send goes on and reaches its last statement
            wait_until(lambda: _waits_on_a_lock(worker_app, "%DELETE FROM sent_mail%"),
                       timeout=10)
            session.commit()
    finally:
        smtp_server.hold_rcpt.clear()
    wait_until(lambda: smtp_server.to(goes["userName"]))
    # (The deletion's license check, written here and never published, waits for the sweep.)
    wait_until(lambda: [j.state for j in jobs_of(worker_app, scim.org.id, "mail.send")]
               == ["done"])
    assert [m.event_key for m in mails_of(worker_app, scim.org.id)] == []


def test_a_deletion_after_the_send_read_the_user_waits_and_finds_the_record(app) -> None:
    """The other interleaving: the send has checked the user (and holds it) but not committed
    when the deletion starts. The deletion deletes the user's row first, so it waits for the
    send's commit and then finds the record. Deleting the record first (before the user) ran
    while the record was invisible, and left it for good."""
    from tasks.notifications import _FINISH

    scim = ScimClient(app.test_client(), make_org(app, seats=10))
    user = person(scim, "read-first")
    event = f"welcome:{user['id']}"
    with app.extensions["db.engine"].connect() as send:  # the send's transaction, held open
        send.execute(text(
            "INSERT INTO sent_mail (org_id, event_key, template, recipient, state, created)"
            " VALUES (:org, :event, 'welcome', '', 'pending', now())"),
            {"org": scim.org.id, "event": event})
        send.execute(_FINISH, {
            "mark": True, "sent": True, "state": "sent", "reason": None,
            "recipient": user["userName"], "event": event, "welcomed": user["id"],
            "job_id": None, "result": "{}"})
        answered: list[int] = []
        deleting = threading.Thread(target=lambda: answered.append(
            ScimClient(app.test_client(), scim.org).delete(f"/Users/{user['id']}").status_code))
        deleting.start()
        wait_until(lambda: _waits_on_a_lock(app, "DELETE FROM users%"), timeout=10)
        send.commit()
        deleting.join(timeout=30)
    assert answered == [204]
    assert mails_of(app, scim.org.id) == []


def test_a_welcome_whose_user_went_first_leaves_no_record(app) -> None:
    """The user is deleted after its welcome was queued and before it was sent: the send drops
    it and keeps no record (before, a row per such user stayed for good)."""
    from tasks import mail, notifications
    from tasks.licenses import reconcile_org

    scim = ScimClient(app.test_client(), make_org(app, seats=10))  # no worker consumes it
    goes = person(scim, "gone-first")
    with app.app_context(), app.extensions["db.sessions"]() as session:
        reconcile_org(session, scim.org.id)  # licenses the user, queues its welcome
        session.commit()
    (welcome,) = [j for j in jobs_of(app, scim.org.id) if j.payload.get("template") == "welcome"]
    assert scim.delete(f"/Users/{goes['id']}").status_code == 204
    with app.app_context(), app.extensions["db.sessions"]() as session:
        mailer = mail.Mailer("smtp://127.0.0.1:9", 1.0)  # never connects: no one to send to
        outcome = notifications.send_one(session, scim.org.id, welcome.id, welcome.payload,
                                         mailer)
        session.commit()
    assert outcome == "dropped"
    assert mails_of(app, scim.org.id) == []


def test_the_migration_deletes_the_welcome_records_of_users_gone() -> None:
    with scratch_database("workteam_welcome") as url:
        migrate.upgrade(url, "0014")
        with psycopg.connect(url, autocommit=True) as conn:
            org = insert_org(conn)
            there = conn.execute(
                "INSERT INTO users (id, org_id, user_name, attrs, emails_lower, active, version,"
                " created, last_modified, manager_state, license_state) VALUES"
                " (gen_random_uuid(), %s, 'there@example.com', '{}', '{}', true, 1, now(), now(),"
                " 'none', 'licensed') RETURNING id", (org,)).fetchone()[0]
            for key, template in ((f"welcome:{there}", "welcome"),
                                  (f"welcome:{uuid.uuid4()}", "welcome"),
                                  ("welcome:not-a-user-id", "welcome"),
                                  (f"deactivated:{uuid.uuid4()}", "deactivated")):
                conn.execute(
                    "INSERT INTO sent_mail (org_id, event_key, template, recipient, state,"
                    " created) VALUES (%s, %s, %s, 'someone@example.com', 'sent', now())",
                    (org, key, template))
        migrate.upgrade(url)
        with psycopg.connect(url) as conn:
            left = [row[0] for row in conn.execute("SELECT event_key FROM sent_mail ORDER BY id")]
        assert left[0] == f"welcome:{there}"
        assert left[1:] == ["welcome:not-a-user-id", left[2]]
        assert left[2].startswith("deactivated:")
        migrate.downgrade(url, "0014")
