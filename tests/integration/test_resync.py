"""Bulk re-sync: export parsing, differences, dry run, apply, one at a time, cancel, the JSON
endpoint and the CLI (with a real worker), and resuming after the worker is killed."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from models import resync as r
from models.outbox import Job
from models.user import User
from tests.conftest import make_org
from tests.fixtures_worker import QUEUE, wait_until
from tests.integration.admin_helpers import configure, make_admin, page_csrf, sign_in
from tests.integration.resync_helpers import bulk_users

# --- parsing (pure) --------------------------------------------------------------------------


def test_parse_csv_and_list_response():
    csv_text = b"\xef\xbb\xbfuserName,externalId,active\na@x.com,e1,true\nB@x.com,,FALSE\n"
    assert r.parse_export(csv_text) == [
        r.Entry("a@x.com", "e1", True),
        r.Entry("B@x.com", None, False),
    ]
    doc = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 2,
        "Resources": [
            {"userName": "a@x.com", "externalId": "e1", "active": True},
            {"USERNAME": "c@x.com"},
        ],
    }
    assert r.parse_export(json.dumps(doc).encode()) == [
        r.Entry("a@x.com", "e1", True),
        r.Entry("c@x.com", None, True),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"email,active\nx,true\n", "userName"),
        (b"userName,active\nx,maybe\n", "line 2"),
        (b"userName\nx\nX\n", "twice"),
        (b'{"Resources": [{"active": true}]}', r"Resources\[0\] has no userName"),
        (b"{nope", "not valid JSON"),
    ],
)
def test_parse_errors(data, message):
    with pytest.raises(r.ExportError, match=message):
        r.parse_export(data)


def test_diff_batch_matches_by_external_id_then_user_name():
    index = r.ExportIndex.build(
        [r.Entry("renamed@x.com", "e1", True), r.Entry("b@x.com", None, False)]
    )
    users = [
        ("1", "old-name@x.com", "e1", True),  # same externalId: matched, nothing to do
        ("2", "B@X.com", "e2", True),  # by userName: inactive at the IdP
        ("3", "gone@x.com", None, True),  # not at the IdP: deactivate
        ("4", "gone-too@x.com", None, False),  # already inactive: nothing
    ]
    diff = r.diff_batch(index, users, set())
    assert [d["id"] for d in diff.deactivate] == ["3"]
    assert diff.set_active == [{"id": "2", "userName": "B@X.com", "active": False}]
    assert diff.set_external_id == []


# --- the task, run in this process -----------------------------------------------------------


@pytest.fixture
def admin_app(app):  # type: ignore[no-untyped-def]
    saved = dict(app.config)
    configure(app)
    yield app
    app.config.clear()
    app.config.update(saved)


def _run(app, job_id):  # type: ignore[no-untyped-def]
    from tasks.resync import run_job

    with app.app_context():
        return run_job(job_id)


def _start(app, org_id, **kw):  # type: ignore[no-untyped-def]
    from models import Organization
    from web.admin import actions

    with app.test_request_context(), app.extensions["db.sessions"]() as session:
        job = actions.start_resync(session, session.get(Organization, org_id), **kw)
        return job.id


def _job(app, job_id) -> Job:  # type: ignore[no-untyped-def]
    with app.extensions["db.sessions"]() as session:
        return session.get(Job, job_id)


def test_resync_repairs_managers_and_licenses(admin_app):  # type: ignore[no-untyped-def]
    app = admin_app
    org = make_org(app, seats=3)
    with app.extensions["db.sessions"]() as session:
        ids = bulk_users(session, org.id, 10, prefix="rp", manager_every=3, resolved=False)
        # drift: a reference marked resolved to the wrong user
        session.execute(
            update(User)
            .where(User.id == ids[9])
            .values(manager_state="resolved", manager_id=ids[0])
        )
        session.commit()
    job_id = _start(app, org.id, dry_run=True)
    assert _run(app, job_id)["state"] == "done"
    with app.extensions["db.sessions"]() as session:  # dry run: nothing changed
        assert session.scalar(select(User.manager_state).where(User.id == ids[3])) == "pending"
    dry = _job(app, job_id)
    assert dry.result["summary"]["managers_changed"] == 7  # users 3..9
    # What the license check would do, counted inside its rolled-back transaction.
    assert (dry.result["summary"]["licensed"], dry.result["summary"]["unlicensed"]) == (3, 7)
    job_id = _start(app, org.id, dry_run=False)
    _run(app, job_id)
    job = _job(app, job_id)
    assert job.state == "done" and job.progress_done == job.progress_total == 13
    with app.extensions["db.sessions"]() as session:
        rows = {u.id: u for u in session.scalars(select(User).where(User.org_id == org.id))}
    assert all(rows[i].manager_state == "resolved" for i in ids[3:])
    assert rows[ids[9]].manager_id == ids[3]
    states = sorted(u.license_state for u in rows.values())
    assert states.count("licensed") == 3 and states.count("unlicensed") == 7
    assert (job.result["summary"]["licensed"], job.result["summary"]["unlicensed"]) == (3, 7)


def test_resync_with_export_dry_run_then_apply(admin_app):  # type: ignore[no-untyped-def]
    app = admin_app
    org = make_org(app, seats=100)
    with app.extensions["db.sessions"]() as session:
        bulk_users(session, org.id, 6, prefix="ex")
    export = "userName,externalId,active\n" + "\n".join(
        [
            "ex0@example.com,ext-ex0,true",
            "ex1@example.com,ext-ex1,false",  # deactivated at the IdP
            "ex2@example.com,new-ext-2,true",  # externalId changed at the IdP
            "ex3@example.com,ext-ex3,true",
            "newcomer@example.com,ext-new,true",  # not here: reported only
        ]
    )  # ex4 and ex5 are gone from the IdP
    job_id = _start(app, org.id, dry_run=True, export=export.encode(), filename="okta.csv")
    _run(app, job_id)
    dry = r.job_json(_job(app, job_id))
    diffs = dry["differences"]
    assert {k: v["count"] for k, v in diffs.items()} == {
        "deactivate": 2,
        "set_active": 1,
        "set_external_id": 1,
        "missing": 1,
    }
    assert sorted(d["userName"] for d in diffs["deactivate"]["sample"]) == [
        "ex4@example.com",
        "ex5@example.com",
    ]
    with app.extensions["db.sessions"]() as session:
        active = session.scalar(
            select(User.active).where(User.org_id == org.id, User.user_name == "ex4@example.com")
        )
        assert active is True  # dry run changed nothing
    job_id = _start(app, org.id, dry_run=False, export_id=__import__("uuid").UUID(dry["export_id"]))
    _run(app, job_id)
    assert _job(app, job_id).result["summary"]["export_changes_applied"] == 4
    with app.extensions["db.sessions"]() as session:
        users = {u.user_name: u for u in session.scalars(select(User).where(User.org_id == org.id))}
    assert [users[f"ex{i}@example.com"].active for i in range(6)] == [
        True,
        False,
        True,
        True,
        False,
        False,
    ]
    assert users["ex2@example.com"].external_id == "new-ext-2"
    assert users["ex4@example.com"].attrs["active"] is False  # through the store: attrs too
    assert users["ex4@example.com"].version == 2


def test_one_resync_at_a_time_and_cancel(admin_app):  # type: ignore[no-untyped-def]
    from web.admin import actions

    app = admin_app
    org = make_org(app)
    first = _start(app, org.id, dry_run=True)
    with pytest.raises(actions.ActionError, match="already in progress"):
        _start(app, org.id, dry_run=False)
    other = make_org(app)  # another organization is not blocked
    _start(app, other.id, dry_run=True)
    from models import Organization

    with app.test_request_context(), app.extensions["db.sessions"]() as session:
        job = actions.cancel_resync(session, session.get(Organization, org.id))
    assert job.id == first and job.state == "cancelled"
    assert _run(app, first)["state"] == "skipped"
    _start(app, org.id, dry_run=True)  # a new one may start now


def test_bad_export_refused_before_any_job(admin_app):  # type: ignore[no-untyped-def]
    from web.admin import actions

    org = make_org(admin_app)
    with pytest.raises(actions.ActionError, match="cannot be read"):
        _start(admin_app, org.id, dry_run=True, export=b"email\nx\n")
    with admin_app.extensions["db.sessions"]() as session:
        assert r.latest_job(session, org.id) is None


# --- with a real worker ---------------------------------------------------------------------


def test_json_endpoint_and_progress_with_worker(admin_app, client, worker):  # type: ignore[no-untyped-def]
    admin_app.config["WORKTEAM_CELERY_QUEUE"] = QUEUE  # the queue the worker consumes
    app = admin_app
    org = make_org(app)
    with app.extensions["db.sessions"]() as session:
        bulk_users(session, org.id, 300, prefix="js", manager_every=4)
    email = make_admin(app, org.id)
    sign_in(client, email)
    token = page_csrf(client)
    assert client.post("/admin/api/resync", json={"dry_run": True}).status_code == 400  # no CSRF
    started = client.post("/admin/api/resync", json={}, headers={"X-CSRFToken": token})
    assert started.status_code == 202, started.get_json()
    job_id = started.get_json()["id"]
    busy = client.post("/admin/api/resync", json={}, headers={"X-CSRFToken": token})
    assert busy.status_code in (202, 409)  # 409 unless the first already finished

    def finished():  # type: ignore[no-untyped-def]
        body = client.get(f"/admin/api/resync/{job_id}").get_json()
        return body if body["state"] == "done" else None

    body = wait_until(finished, timeout=60, interval=0.3)
    assert body["percent"] == 100 and body["done"] == body["total"] == 301 + 3
    assert body["summary"]["users_checked"] == 301


def test_cli_resync_dry_run_json(admin_app, worker):  # type: ignore[no-untyped-def]
    admin_app.config["WORKTEAM_CELERY_QUEUE"] = QUEUE  # the queue the worker consumes
    app = admin_app
    org = make_org(app)
    with app.extensions["db.sessions"]() as session:
        bulk_users(session, org.id, 50, prefix="cli")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["resync", str(org.id), "--dry-run", "--json", "--timeout", "60"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout.strip().splitlines()[-1])
    assert body["state"] == "done" and body["dry_run"] is True
    status = runner.invoke(args=["resync", str(org.id), "--status"])
    assert json.loads(status.stdout)["id"] == body["id"]


@pytest.mark.slow
def test_resync_resumes_after_worker_kill(admin_app, start_worker):  # type: ignore[no-untyped-def]
    app = admin_app
    org = make_org(app)
    with app.extensions["db.sessions"]() as session:
        bulk_users(session, org.id, 1000, prefix="kill", manager_every=5, resolved=False)
    # Its own queue: the session's shared worker must not pick the job up.
    queue = f"{QUEUE}-kill"
    app.config["WORKTEAM_CELERY_QUEUE"] = queue
    env = {
        "WORKTEAM_CELERY_QUEUE": queue,
        "WORKTEAM_RESYNC_BATCH_SIZE": "50",
        "WORKTEAM_RESYNC_BATCH_DELAY": "0.25",
        "WORKTEAM_RESYNC_STALE_SECONDS": "2",
    }
    first = start_worker(concurrency=1, pool="solo", env=env)
    job_id = _start(app, org.id, dry_run=False)
    wait_until(lambda: _job(app, job_id).progress_done >= 150, timeout=60, interval=0.05)
    first.kill()
    killed = _job(app, job_id)
    assert killed.state == "running" and killed.progress_done < 1000
    stopped_at = killed.result["after_seq"]
    app.config["WORKTEAM_RESYNC_STALE_SECONDS"] = 2
    second = start_worker(concurrency=1, pool="solo", env=env)  # its start-up sweep takes over
    try:
        wait_until(lambda: _job(app, job_id).state == "done", timeout=60, interval=0.2)
    except AssertionError:
        print(second.log()[-4000:])
        raise
    job = _job(app, job_id)
    assert job.attempts == 2
    assert job.result["resumed_from_seq"] >= stopped_at  # from the checkpoint, not from 0
    assert job.result["summary"]["users_checked"] == 1000  # each user once
    with app.extensions["db.sessions"]() as session:
        pending = session.scalar(
            select(__import__("sqlalchemy").func.count())
            .select_from(User)
            .where(User.org_id == org.id, User.manager_state == "pending")
        )
    assert pending == 0
