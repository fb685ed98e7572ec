"""Seats of a paid organization: checks on every create, (re)activation and delete, run by a
real worker; welcome and overflow mail received by the test SMTP server."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ScimClient, make_org
from tests.fixtures_worker import wait_until
from tests.integration.worker_helpers import (
    WT,
    all_jobs_settled,
    jobs_of,
    license_counts,
    mails_of,
    make_admin,
    person,
    set_active,
)

pytestmark = pytest.mark.usefixtures("worker")


def lic(scim: ScimClient, user: dict) -> str:
    return scim.get(f"/Users/{user['id']}").get_json()[WT]["licenseState"]


def settle(app, scim: ScimClient) -> None:
    wait_until(lambda: all_jobs_settled(app, scim.org.id), timeout=60)


def test_overflow_seats_then_more_seats(worker_app, smtp_server) -> None:
    scim = ScimClient(worker_app.test_client(), make_org(worker_app, seats=2))
    admin = person(scim, "admin")
    make_admin(worker_app, admin["id"])
    settle(worker_app, scim)
    first = person(scim, "first")
    second = person(scim, "second")
    third = person(scim, "third")
    settle(worker_app, scim)
    # IdPs got their normal 201s; beyond the seats users are provisioned but unlicensed.
    assert [lic(scim, u) for u in (admin, first, second, third)] == [
        "licensed", "licensed", "unlicensed", "unlicensed"
    ]
    wait_until(lambda: len(smtp_server.to(admin["userName"])) == 2)  # welcome + overflow
    overflow = [m for m in smtp_server.to(admin["userName"]) if "seats" in m.subject]
    # The count is read when the notice is sent: one or two waiting, depending on timing.
    assert len(overflow) == 1 and "user(s) are waiting for a seat" in overflow[0].text()
    welcome = smtp_server.to(first["userName"])
    assert len(welcome) == 1 and welcome[0].subject.startswith("Welcome to Workteam")
    assert welcome[0].message["From"] == worker_app.config["MAIL_FROM"]
    html = [p for p in welcome[0].message.walk() if p.get_content_type() == "text/html"]
    assert html and "<p>" in html[0].get_payload(decode=True).decode()
    assert smtp_server.to(second["userName"]) == []

    # Still in the same overflow episode: no second notice.
    fourth = person(scim, "fourth")
    settle(worker_app, scim)
    assert lic(scim, fourth) == "unlicensed"

    # Seats grow: waiting users get theirs oldest first.
    with worker_app.app_context():
        result = worker_app.test_cli_runner().invoke(args=["org", "seats", str(scim.org.id), "4"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["seats"] == 4
    wait_until(lambda: lic(scim, third) == "licensed")
    settle(worker_app, scim)
    assert lic(scim, second) == "licensed" and lic(scim, fourth) == "unlicensed"
    wait_until(lambda: len(smtp_server.to(third["userName"])) == 1)
    assert len(smtp_server.to(second["userName"])) == 1

    # A licensed user leaves: the seat goes to the waiting one; the episode closes.
    set_active(scim, first["id"], False)
    wait_until(lambda: lic(scim, fourth) == "licensed")
    assert lic(scim, first) == "none"
    settle(worker_app, scim)
    assert len([m for m in smtp_server.to(admin["userName"]) if "seats" in m.subject]) == 1

    # A new overflow episode after that: one new notice.
    person(scim, "fifth")
    settle(worker_app, scim)
    wait_until(
        lambda: len([m for m in smtp_server.to(admin["userName"]) if "seats" in m.subject]) == 2
    )
    assert license_counts(worker_app, scim.org.id) == {"licensed": 4, "unlicensed": 1, "none": 1}


def test_reactivation_and_delete_enqueue_checks(worker_app, smtp_server) -> None:
    scim = ScimClient(worker_app.test_client(), make_org(worker_app, seats=1))
    a = person(scim, "a")
    b = person(scim, "b")
    settle(worker_app, scim)
    assert (lic(scim, a), lic(scim, b)) == ("licensed", "unlicensed")
    assert scim.delete(f"/Users/{a['id']}").status_code == 204
    wait_until(lambda: lic(scim, b) == "licensed")
    set_active(scim, b["id"], False)
    c = person(scim, "c")
    wait_until(lambda: lic(scim, c) == "licensed")
    set_active(scim, b["id"], True)  # reactivated, but the seat is taken now
    settle(worker_app, scim)
    assert (lic(scim, b), lic(scim, c)) == ("unlicensed", "licensed")
    # The org has no admin: the overflow notice is recorded as dropped with its reason.
    dropped = [m for m in mails_of(worker_app, scim.org.id) if m.template == "overflow"]
    assert dropped and dropped[0].state == "dropped"
    assert dropped[0].reason == "the organization has no admin"


def test_free_plan_keeps_license_state_none(worker_app) -> None:
    org = make_org(worker_app, plan="free", seats=0)
    with worker_app.app_context():
        # SCIM requires a paid plan, so write through the store like the re-sync would.
        from models import store

        with worker_app.extensions["db.sessions"]() as session:
            result = store.create_user(session, org.id, {"userName": "free@example.com"})
            session.commit()
        assert result.user.license_state == "none"
    assert license_counts(worker_app, org.id) == {"none": 1}


def test_a_burst_of_creates_shares_a_few_passes(worker_app, smtp_server) -> None:
    """Organization-wide passes start WORKTEAM_COALESCE_SECONDS (1 s) after the write that
    asked for them: the creates of a burst join the waiting job instead of each finding the
    previous pass already running (with an idle worker, that was about a pass per create)."""
    scim = ScimClient(worker_app.test_client(), make_org(worker_app, seats=100))
    users = [person(scim, "burst") for _ in range(12)]
    settle(worker_app, scim)
    assert {lic(scim, u) for u in users} == {"licensed"}
    checks = jobs_of(worker_app, scim.org.id, "licenses.check")
    passes = jobs_of(worker_app, scim.org.id, "managers.resolve_org")
    assert 1 <= len(checks) <= 2 and 1 <= len(passes) <= 2, (len(checks), len(passes))
