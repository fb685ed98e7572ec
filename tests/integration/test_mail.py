"""Notification mail through aiosmtpd: deactivation notices, exactly once per event, retried
while SMTP is down, dropped with a reason when its user went away first."""

from __future__ import annotations

from email.utils import parseaddr

import pytest

from tests.conftest import ScimClient, make_org
from tests.fixtures_worker import wait_until
from tests.integration.worker_helpers import (
    all_jobs_settled,
    jobs_of,
    mails_of,
    make_admin,
    person,
    set_active,
)

pytestmark = pytest.mark.usefixtures("worker")


def org_scim(app, seats: int = 10) -> ScimClient:
    return ScimClient(app.test_client(), make_org(app, seats=seats))


def test_deactivation_notice_goes_to_the_manager(worker_app, smtp_server) -> None:
    scim = org_scim(worker_app)
    boss = person(scim, "boss", displayName="Boss")
    emp = person(scim, "emp", manager=boss["id"], displayName="Emp Loyee")
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    set_active(scim, emp["id"], False)
    got = wait_until(lambda: [m for m in smtp_server.to(boss["userName"])
                              if "deactivated" in m.subject])
    assert len(got) == 1 and got[0].subject == "Emp Loyee was deactivated in Workteam"
    assert "Emp Loyee was deactivated" in got[0].text()


def test_deactivation_notice_without_manager_goes_to_admins(worker_app, smtp_server) -> None:
    scim = org_scim(worker_app)
    admins = [person(scim, "admin"), person(scim, "admin")]
    for a in admins:
        make_admin(worker_app, a["id"])
    emp = person(scim, "emp")
    set_active(scim, emp["id"], False)
    for a in admins:
        wait_until(lambda a=a: [m for m in smtp_server.to(a["userName"])
                                if "deactivated" in m.subject])
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    assert len([m for m in smtp_server.to(admins[0]["userName"])
                if "deactivated" in m.subject]) == 1


def test_deactivation_burst_is_decided_by_one_task_per_pass(worker_app, smtp_server) -> None:
    """The notice rows of a burst are not published one by one: the organization's coalesced
    job decides them all (each row done, "covered_by" it), and each notice is mailed once."""
    scim = org_scim(worker_app)
    boss = person(scim, "boss")
    staff = [person(scim, "staff", manager=boss["id"], displayName=f"Staff {n}")
             for n in range(6)]
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    for member in staff:
        set_active(scim, member["id"], False)
    got = wait_until(lambda: len([m for m in smtp_server.to(boss["userName"])
                                  if "deactivated" in m.subject]) == 6 or None)
    assert got
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    notices = jobs_of(worker_app, scim.org.id, "mail.deactivated")
    passes = {j.id for j in jobs_of(worker_app, scim.org.id, "mail.deactivated_org")}
    assert len(notices) == 6 and all(j.state == "done" for j in notices)
    assert {(j.result or {}).get("covered_by") for j in notices} <= passes
    assert len(passes) <= 6
    subjects = sorted(m.subject for m in smtp_server.to(boss["userName"])
                      if "deactivated" in m.subject)
    assert subjects == sorted(f"Staff {n} was deactivated in Workteam" for n in range(6))


def test_deactivation_burst_without_admin_is_recorded_dropped(worker_app, smtp_server) -> None:
    """No manager and no admin to tell: each notice of a burst gets its dropped record with the
    reason (written per pass, in one statement), and its job is done."""
    scim = org_scim(worker_app)
    staff = [person(scim, "staff") for _ in range(5)]
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    for member in staff:
        set_active(scim, member["id"], False)
    wait_until(lambda: len([m for m in mails_of(worker_app, scim.org.id)
                            if m.template == "deactivated"]) == 5 or None)
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    dropped = [m for m in mails_of(worker_app, scim.org.id) if m.template == "deactivated"]
    assert {(m.state, m.reason) for m in dropped} == {("dropped", "the organization has no admin")}
    assert sorted(m.event_key.rsplit(":", 1)[0] for m in dropped) == sorted(
        f"deactivated:{member['id']}" for member in staff)
    notices = jobs_of(worker_app, scim.org.id, "mail.deactivated")
    assert len(notices) == 5 and all(j.state == "done" for j in notices)


def test_smtp_down_then_up_mail_arrives_once(worker_app, smtp_server) -> None:
    scim = org_scim(worker_app)
    smtp_server.stop()
    try:
        user = person(scim, "welcome")
        job = wait_until(lambda: [j for j in jobs_of(worker_app, scim.org.id, "mail.send")
                                  if j.attempts >= 2], timeout=30)[0]
        assert job.state == "pending" and "Connection" in (job.error or "")
    finally:
        smtp_server.start()
    wait_until(lambda: smtp_server.to(user["userName"]), timeout=30)
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id))
    assert len(smtp_server.to(user["userName"])) == 1
    [sent] = [m for m in mails_of(worker_app, scim.org.id) if m.template == "welcome"]
    assert sent.state == "sent" and sent.recipient == user["userName"]


def test_smtp_down_retries_go_on_without_failing_the_task(worker_app, smtp_server,
                                                          worker) -> None:
    """The job row counts the attempts (WORKTEAM_TASK_MAX_ATTEMPTS, 12 here). Celery's own
    retry limit (3 by default; ``retry(max_retries=None)`` means that default, not "no
    limit") ended the retries after the 4th attempt: the task failed (an ERROR line, FAILURE
    in Flower) while its job was still pending, and only the outbox sweep tried it again,
    WORKTEAM_REPUBLISH_AFTER_SECONDS later (30 s here)."""
    scim = org_scim(worker_app)
    smtp_server.stop()
    try:
        person(scim, "patient")
        [job] = wait_until(lambda: [j for j in jobs_of(worker_app, scim.org.id, "mail.send")
                                    if j.attempts >= 6], timeout=25)
        assert job.state == "pending"
    finally:
        smtp_server.start()
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id), timeout=30)
    assert f"raised unexpected: JobRetry('job {job.id} " not in worker.log()


def test_welcome_dropped_when_user_deleted_first(worker_app, smtp_server) -> None:
    scim = org_scim(worker_app)
    smtp_server.hold_rcpt.clear()
    smtp_server.stop()  # keep the welcome mail waiting
    try:
        user = person(scim, "gone")
        wait_until(lambda: [j for j in jobs_of(worker_app, scim.org.id, "mail.send")
                            if j.attempts >= 1])
        assert scim.delete(f"/Users/{user['id']}").status_code == 204
    finally:
        smtp_server.start()
    wait_until(lambda: all_jobs_settled(worker_app, scim.org.id), timeout=30)
    [job] = [j for j in jobs_of(worker_app, scim.org.id, "mail.send")]
    assert job.state == "done"
    # Dropped, and no record kept: the user is gone (test_welcome_records.py).
    assert [m for m in mails_of(worker_app, scim.org.id) if m.template == "welcome"] == []
    assert smtp_server.to(user["userName"]) == []


def test_render_and_smtp_url_forms() -> None:
    from tasks.mail import parse_smtp_url, render

    assert parse_smtp_url("smtp://127.0.0.1:2525").security == "plain"
    s = parse_smtp_url("smtp+starttls://u%40x:p%3Aw@mail.example:2587")
    assert (s.security, s.host, s.port, s.username, s.password) == (
        "starttls", "mail.example", 2587, "u@x", "p:w"
    )
    assert parse_smtp_url("smtp://mail.example?starttls=1").port == 587
    assert parse_smtp_url("smtps://mail.example").security == "tls"
    assert parse_smtp_url("smtps://mail.example").port == 465
    with pytest.raises(ValueError):
        parse_smtp_url("http://mail.example")
    msg = render("deactivated", "W <w@x>", "a@x", "ev:1", org_name="<Org>", name="A",
                 public_url="http://x", user_name="<b>")
    html = next(p for p in msg.walk() if p.get_content_type() == "text/html")
    assert "&lt;b&gt;" in html.get_payload(decode=True).decode()  # HTML is escaped
    assert msg["Message-ID"] == render("deactivated", "W <w@x>", "a@x", "ev:1", org_name="O",
                                       name="A", public_url="u", user_name="b")["Message-ID"]


@pytest.mark.parametrize("to", ["zoe@example.com", "zoë@exämple.com"])
def test_non_ascii_names_and_addresses_survive_the_wire(to) -> None:
    import email
    from email import policy

    from tasks.mail import render

    msg = render("welcome", "Wörkteam <no-reply@workteam.example>", to, "ev:2",
                 org_name="Ünïon", name="Zoë Ørsted", public_url="http://x")
    # smtplib sends a message with a non-ASCII address as UTF-8 (SMTPUTF8, RFC 6531).
    wire = msg.as_bytes(policy=policy.SMTPUTF8) if not to.isascii() else msg.as_bytes()
    parsed = email.message_from_string(wire.decode("utf-8"), policy=policy.default)
    assert parsed["Subject"] == "Welcome to Workteam, Zoë Ørsted"
    assert parsed["From"].addresses[0].display_name == "Wörkteam"
    assert parsed["To"].addresses[0].addr_spec == to
    body = email.message_from_bytes(wire, policy=policy.default)
    assert "Zoë Ørsted" in body.get_body(("plain",)).get_content()
    assert "Ünïon" in body.get_body(("html",)).get_content()


def test_welcome_mails_in_batches_exactly_once_and_a_refused_one_apart(
    worker_app, smtp_server
) -> None:
    """Seats raised for 60 waiting users: one check licenses them all, two send tasks are
    published (one per BATCH of 50) and each sends the others over its SMTP session. A
    recipient the server refuses in the middle fails on its own; the batch goes on."""
    import json
    import time

    from models.jobs import KIND_MAIL
    from models.organization import Organization
    from tests.conftest import RUN_ID

    org = make_org(worker_app, seats=0)
    with worker_app.extensions["db.sessions"]() as session:
        session.get(Organization, org.id).rate_limit = 0
        session.commit()
    scim = ScimClient(worker_app.test_client(), org)
    names = [f"batch-{RUN_ID}-{i}-{time.monotonic_ns()}@example.com" for i in range(60)]
    refused = names[25]
    smtp_server.reject.add(refused)
    try:
        for name in names:
            scim.create_user(name, emails=[{"value": name, "primary": True}])
        wait_until(lambda: all_jobs_settled(worker_app, org.id), timeout=30)
        assert not smtp_server.to_any(set(names))  # no seat, no welcome
        with worker_app.app_context():
            result = worker_app.test_cli_runner().invoke(
                args=["org", "seats", str(org.id), "100"])
        assert result.exit_code == 0 and json.loads(result.output)["seats"] == 100
        others = [n for n in names if n != refused]
        wait_until(lambda: all(smtp_server.to(n) for n in others), timeout=60)
        failed = wait_until(lambda: [j for j in jobs_of(worker_app, org.id, KIND_MAIL)
                                     if j.state == "failed"], timeout=30)
    finally:
        smtp_server.reject.discard(refused)
    assert [j.payload["event"] for j in failed] == [f"welcome:{_id(scim, refused)}"]
    time.sleep(1)
    assert all(len(smtp_server.to(n)) == 1 for n in others)
    # The envelope (given to smtplib, not parsed back from the headers): MAIL_FROM's address,
    # and the user as the one recipient, as the headers say.
    sent = [m for n in others for m in smtp_server.to(n)]
    assert {m.mail_from for m in sent} == {parseaddr(worker_app.config["MAIL_FROM"])[1]}
    assert all(m.rcpt_tos == [m.message["To"]] for m in sent)
    batched = [j for j in jobs_of(worker_app, org.id, KIND_MAIL)
               if (j.result or {}).get("batched_with")]
    assert len(batched) >= 40, len(batched)


def _id(scim: ScimClient, user_name: str) -> str:
    found = scim.get("/Users", query_string={"filter": f'userName eq "{user_name}"'}).get_json()
    return found["Resources"][0]["id"]
