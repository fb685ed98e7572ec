"""An IdP's lookup by userName is one database statement: no transaction around it (autocommit
read on a plain connection, no ORM session), the token from the auth cache, the user's groups
and manager from the same query. Its create is one too: the INSERT with the organization's
follow-up jobs (and a pending group member's, if one may name the new user), in autocommit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from sqlalchemy import select, update

from models.user import User

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_lookup_by_user_name_is_one_statement_with_groups_and_manager(client, app, scim):
    boss = scim.create_user("boss@example.com", displayName="The Boss")
    emp = scim.create_user("emp@example.com", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    with app.extensions["db.sessions"]() as session:  # resolved, as the worker would
        session.execute(update(User).where(User.id == emp["id"])
                        .values(manager_id=boss["id"], manager_state="resolved"))
        session.commit()
    group = scim.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                  "displayName": "Eng", "members": [{"value": emp["id"]}]})
    assert group.status_code == 201
    scim.get("/Users")  # the token is now cached

    sessions_opened: list[object] = []
    sessions = app.extensions["db.autocommit_sessions"]
    app.extensions["db.autocommit_sessions"] = lambda: sessions_opened.append(1) or sessions()
    try:
        with _recording() as (statements, autocommit):
            found = scim.get("/Users", query_string={"filter": 'userName eq "emp@example.com"'})
    finally:
        app.extensions["db.autocommit_sessions"] = sessions

    assert found.status_code == 200
    request_statements = [s for s in statements if _of_the_request(s)]
    assert len(request_statements) == 1, statements
    assert autocommit[statements.index(request_statements[0])]  # no BEGIN, no ROLLBACK
    assert not sessions_opened  # neither by the cached credential nor by the lookup
    (user,) = found.get_json()["Resources"]
    manager = user[ENTERPRISE]["manager"]
    assert manager["value"] == boss["id"] and manager["displayName"] == "The Boss"
    assert manager["$ref"].endswith(f"/Users/{boss['id']}")
    assert [g["display"] for g in user["groups"]] == ["Eng"]


def _of_the_request(statement: str) -> bool:
    """Not the audit writer's (synchronous in tests, in its own session and transaction), nor
    the pool's ping of a connection that sat idle (models/db.py: make_engine)."""
    audit = ("synchronous_commit", "audit_events", "last_used")
    return statement != "SELECT 1" and not any(a in statement for a in audit)


@contextlib.contextmanager
def _recording() -> Iterator[tuple[list[str], list[bool]]]:
    """Every statement sent to PostgreSQL meanwhile (through SQLAlchemy or straight to the
    psycopg connection: models.db.driver_rows), with its connection's autocommit."""
    statements: list[str] = []
    autocommit: list[bool] = []
    original = psycopg.Cursor.execute

    def execute(cursor, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        statements.append(str(query))
        autocommit.append(cursor.connection.autocommit)
        return original(cursor, query, *args, **kwargs)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    try:
        yield statements, autocommit
    finally:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]


def _request_statements(app, call, autocommit: list[bool] | None = None):  # type: ignore[no-untyped-def]
    with _recording() as (statements, autocommits):
        response = call()
    keep = [i for i, s in enumerate(statements) if _of_the_request(s)]
    if autocommit is not None:
        autocommit[:] = [autocommits[i] for i in keep]
    return response, [statements[i] for i in keep]


def test_create_is_one_statement_with_its_followup_jobs(app, scim):
    from models.outbox import Job

    scim.get("/Users")  # the token is now cached
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "new@example.com", "externalId": "ext-new"}
    autocommit: list[bool] = []
    created, statements = _request_statements(app, lambda: scim.post("/Users", body),
                                              autocommit)
    assert created.status_code == 201
    assert len(statements) == 1, statements
    assert "INSERT INTO users" in statements[0] and "INSERT INTO jobs" in statements[0]
    assert autocommit == [True]  # no BEGIN, no COMMIT: the statement is the transaction
    with app.extensions["db.sessions"]() as session:
        kinds = set(session.scalars(select(Job.kind).where(Job.org_id == scim.org.id)))
    assert {"managers.resolve_org", "licenses.check"} <= kinds

    again, statements = _request_statements(app, lambda: scim.post("/Users", body))
    assert again.status_code == 409 and again.get_json()["scimType"] == "uniqueness"
    assert len(statements) == 1, statements


def test_an_import_page_is_one_statement_with_its_total(app, scim):
    """The tally comes in the page's own statement; a stale recorded position (a user added
    since) costs the page a second statement, by OFFSET, and the rows stay exact."""
    made = [scim.create_user(f"imp{i}@example.com")["id"] for i in range(5)]
    scim.get("/Users?startIndex=1&count=2")  # records where the first page ended

    page, statements = _request_statements(app, lambda: scim.get("/Users?startIndex=3&count=2"))
    assert len(statements) == 1, statements
    body = page.get_json()
    assert body["totalResults"] == 5 and [u["id"] for u in body["Resources"]] == made[2:4]

    scim.get("/Users?startIndex=1&count=2")
    scim.delete(f"/Users/{made[0]}")
    page, statements = _request_statements(app, lambda: scim.get("/Users?startIndex=3&count=2"))
    assert len(statements) == 2, statements
    body = page.get_json()
    assert body["totalResults"] == 4 and [u["id"] for u in body["Resources"]] == made[3:5]

    past_the_end, statements = _request_statements(
        app, lambda: scim.get("/Users?startIndex=9&count=2"))
    assert past_the_end.get_json()["totalResults"] == 4 and len(statements) == 2, statements


PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_a_deactivation_is_one_statement_with_its_jobs(app, scim):
    """Entra's deactivation sets ``active`` alone: one statement, with no read before it, that
    updates the row and writes the notice and the organization's jobs; no BEGIN, no COMMIT."""
    from models.outbox import Job

    user = scim.create_user("toggle@example.com")
    scim.get("/Users")  # the token is now cached
    body = {"schemas": [PATCH_OP],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
    autocommit: list[bool] = []
    patched, statements = _request_statements(
        app, lambda: scim.patch(f"/Users/{user['id']}", body), autocommit)
    assert patched.status_code == 200 and patched.get_json()["active"] is False
    assert len(statements) == 1, statements
    assert "UPDATE users" in statements[0] and "INSERT INTO jobs" in statements[0]
    assert autocommit == [True]
    assert patched.headers["ETag"] == 'W/"2"'
    with app.extensions["db.sessions"]() as session:
        jobs = {kind: key for kind, key in session.execute(
            select(Job.kind, Job.dedup_key).where(Job.org_id == scim.org.id))}
    assert {"mail.deactivated", "mail.deactivated_org", "licenses.check"} <= set(jobs)
    assert jobs["mail.deactivated"] == f"mail.deactivated:{user['id']}:2"

    # Already inactive: nothing is written, and the same statement reads the user.
    again, statements = _request_statements(app, lambda: scim.patch(f"/Users/{user['id']}", body))
    assert again.status_code == 200 and again.headers["ETag"] == 'W/"2"'
    assert again.get_json() == patched.get_json()
    assert len(statements) == 1, statements


def test_patch_is_a_read_and_one_write_in_autocommit(app, scim):
    """Any other PATCH reads the user, then writes it with its jobs in one statement."""
    user = scim.create_user("renamed@example.com")
    scim.get("/Users")  # the token is now cached
    body = {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "displayName", "value": "Renamed"},
        {"op": "replace", "path": "active", "value": False}]}
    autocommit: list[bool] = []
    patched, statements = _request_statements(
        app, lambda: scim.patch(f"/Users/{user['id']}", body), autocommit)
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["displayName"] == "Renamed"
    assert len(statements) == 2, statements
    assert "UPDATE users" in statements[1] and "INSERT INTO jobs" in statements[1]
    assert autocommit == [True, True]


def test_an_update_that_lost_its_race_writes_no_job(app, scim):
    """The version check is in the UPDATE's WHERE, and the jobs are written only if it
    matched: a writer that read version 1 after another wrote version 2 changes nothing."""
    import uuid

    from models import store
    from models.errors import VersionConflict
    from models.outbox import Job

    created = scim.create_user("racer@example.com")
    sessions = app.extensions["db.autocommit_sessions"]  # autocommit, as a PATCH's write
    with sessions() as session:
        stale = session.get(User, uuid.UUID(created["id"]))
        assert stale.version == 1
        put = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
               "userName": "racer@example.com", "displayName": "Won the race"}
        assert scim.put(f"/Users/{created['id']}", put).status_code == 200
        with app.app_context():
            try:
                store.replace_user(session, stale, {**stale.attrs, "active": False}, paid=True)
            except VersionConflict:
                pass
            else:
                raise AssertionError("a write from a stale read succeeded")
    with app.extensions["db.sessions"]() as session:
        kinds = set(session.scalars(select(Job.kind).where(Job.org_id == scim.org.id)))
        row = session.get(User, uuid.UUID(created["id"]))
        assert row.active is True and row.version == 2
    assert not kinds & {"mail.deactivated", "mail.deactivated_org"}
