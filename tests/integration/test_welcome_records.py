"""A welcome record (sent_mail, one per user ever) holds the user's email address: it goes when
the user is deleted (models/outbox.py ``forget_welcome``), and migration 0015 deletes those of
the users deleted before it."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from models import migrate
from tests.conftest import ScimClient, insert_org, make_org, scratch_database
from tests.fixtures_worker import wait_until
from tests.integration.worker_helpers import all_jobs_settled, mails_of, person


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
