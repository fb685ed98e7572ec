"""The userName lookup's prepared plan as the users table grows: made in an initial sync's first
lookups it stays an index probe, and one made at 200-300 users without statistics probes again
once the worker has analyzed the grown table (models/planner.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from models import planner
from tests.conftest import ScimClient, make_org
from tests.fixtures_worker import wait_until
from tests.integration.plan_helpers import Prepared, analyzed_plans, recorded, shadowed

INSERT = text(
    "INSERT INTO users (id, org_id, user_name, active, attrs, created, last_modified, version, "
    "manager_state, license_state, is_admin, emails_lower) "
    "SELECT gen_random_uuid(), :org, 'u' || n || '@example.com', :active, '{}', now(), now(), 1, "
    "'none', 'none', false, '{}' FROM generate_series(CAST(:first AS int), CAST(:last AS int)) n"
)


@pytest.fixture
def session(app) -> Iterator[Connection]:
    """A temporary ``users`` shadows the real one (``plan_helpers.shadowed``)."""
    with shadowed(app.config["DATABASE_URL"], "users") as conn:
        yield conn


@pytest.fixture(autouse=True)
def young(monkeypatch):
    monkeypatch.setattr(planner, "_grown_up", False)


def live(conn: Connection) -> int:
    return conn.execute(text(
        "SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = CAST('users' AS regclass)"
    )).scalar()


def grow(conn: Connection, org: uuid.UUID, first: int, last: int, active: bool = True) -> None:
    """Insert users ``first..last`` and wait until the statistics collector counts them."""
    wanted = live(conn) + last - first + 1
    conn.execute(INSERT, {"org": org, "first": first, "last": last, "active": active})
    conn.execute(text("SELECT pg_stat_force_next_flush()"))  # when this session goes idle
    wait_until(lambda: live(conn) >= wanted, timeout=10)


def lookup_plan(conn: Connection, org: uuid.UUID, *, runs: int = 1) -> dict:
    """Run the prepared userName lookup ``runs`` times, then its plan, as EXPLAIN shows it."""
    from web.scim.listing import _by_user_name

    compiled = _by_user_name().compile(dialect=postgresql.psycopg.dialect(
        paramstyle="numeric_dollar"))
    values = {**compiled.params, "org_id": org, "user_name": "nobody@example.com"}
    args = [values[name] for name in compiled.positiontup]
    raw = conn.connection.driver_connection
    if not raw.execute("SELECT 1 FROM pg_prepared_statements WHERE name = 'lookup'").fetchone():
        raw.execute(f"PREPARE lookup AS {compiled.string}")
    cursor = psycopg.ClientCursor(raw)
    placeholders = ", ".join(["%s"] * len(args))
    for _ in range(runs):
        cursor.execute(f"EXECUTE lookup({placeholders})", args)
    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE lookup({placeholders})",
                   args)
    return cursor.fetchone()[0][0]["Plan"]  # the scan of users (its subplans below it)


def blocks(plan: dict) -> int:
    """Blocks a plan read; a temporary table's through local buffers."""
    return sum(plan[f"{kind} {how} Blocks"]
               for kind in ("Shared", "Local") for how in ("Hit", "Read"))


def test_a_lookup_plan_made_while_the_organization_was_small_stays_an_index_probe(session):
    """A connection keeps the plan of a prepared statement; one made during an initial sync's
    first lookups must still find a user by its index once the organization has grown (with
    "ORDER BY seq LIMIT" it walked every user of the organization instead)."""
    org = uuid.uuid4()
    session.execute(INSERT, {"org": org, "first": 1, "last": 20, "active": True})
    lookup_plan(session, org, runs=8)  # five custom plans, then the generic one is kept
    session.execute(INSERT, {"org": org, "first": 21, "last": 5000, "active": True})
    plan = lookup_plan(session, org)
    scan = plan if "Index Cond" in plan else plan["Plans"][0]
    assert "lower" in scan.get("Index Cond", ""), plan
    assert scan.get("Rows Removed by Filter", 0) == 0
    assert blocks(plan) < 20  # the probe, not the organization's 5,020 users


def test_a_lookup_planned_at_300_users_probes_again_once_the_grown_table_is_analyzed(session):
    org = uuid.uuid4()
    grow(session, org, 1, 300)
    lookup_plan(session, org, runs=8)  # five custom plans, then the generic one is kept
    session.execute(INSERT, {"org": org, "first": 301, "last": 5000, "active": True})
    before = lookup_plan(session, org)
    # Planned without statistics at 300 users, the kept plan walks the organization on org_id
    # alone (an index of another column), filtering all 5,000 users on lower(user_name).
    assert "lower" not in before.get("Index Cond", ""), before
    assert before["Rows Removed by Filter"] == 5000

    grow(session, org, 5001, 5001)
    assert planner.analyze_users_while_young(session)
    after = lookup_plan(session, org)  # the ANALYZE made every connection plan it again
    assert "lower" in after.get("Index Cond", ""), after
    assert after.get("Rows Removed by Filter", 0) == 0
    assert blocks(after) < 20


def test_analyzes_when_the_table_has_doubled_until_it_has_grown_up(session, monkeypatch):
    org = uuid.uuid4()
    grow(session, org, 1, planner.FIRST_AT - 1)
    assert not planner.analyze_users_while_young(session)  # too small to matter
    grow(session, org, planner.FIRST_AT, 1000)
    assert planner.analyze_users_while_young(session)  # never analyzed, big enough
    assert not planner.analyze_users_while_young(session)
    grow(session, org, 1001, 1999)
    assert not planner.analyze_users_while_young(session)  # not doubled yet
    grow(session, org, 2000, 2000)
    assert planner.analyze_users_while_young(session)

    monkeypatch.setattr(planner, "GROWN_UP", 2000)
    grow(session, org, 2001, 5000)
    assert not planner.analyze_users_while_young(session)  # grown up: autovacuum's job now
    assert planner._grown_up


def _last_analyze(conn: Connection):  # type: ignore[no-untyped-def]
    return conn.execute(text(
        "SELECT last_analyze FROM pg_stat_user_tables WHERE relid = CAST('users' AS regclass)"
    )).scalar()


@pytest.mark.usefixtures("worker")
def test_the_manager_pass_after_a_create_analyzes_a_table_that_doubled(worker_app):
    org = make_org(worker_app, seats=10)
    scim = ScimClient(worker_app.test_client(), org)
    with worker_app.extensions["db.autocommit_engine"].connect() as conn:
        conn.execute(text("ANALYZE users"))
        analyzed = conn.execute(text(
            "SELECT reltuples FROM pg_class WHERE oid = CAST('users' AS regclass)")).scalar()
        stamp = _last_analyze(conn)
        # Inactive: the license check the create starts leaves them alone.
        grow(conn, org.id, 1, int(max(analyzed, planner.FIRST_AT)) + 1, active=False)
        scim.create_user(f"planned-{uuid.uuid4().hex[:6]}@example.com")  # -> the manager pass
        wait_until(lambda: _last_analyze(conn) != stamp, timeout=20)


def test_a_failed_check_is_logged_not_raised(caplog):
    """The manager pass it follows has committed: a database away must not fail its task."""
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", poolclass=NullPool)
    assert planner.refresh_young_statistics(engine) is False
    assert "could not check the users table's statistics" in caplog.text


@pytest.fixture
def groups_session(app) -> Iterator[Connection]:
    """A temporary ``groups`` shadows the real one."""
    with shadowed(app.config["DATABASE_URL"], "groups") as conn:
        yield conn


GROUPS = text(
    "INSERT INTO groups (id, org_id, display_name, attrs, version, created, last_modified) "
    "SELECT gen_random_uuid(), :org, 'Group ' || n, '{}', 1, now(), now() "
    "FROM generate_series(CAST(:first AS int), CAST(:last AS int)) n"
)


@pytest.mark.parametrize("planned_at", [20, 300])
def test_a_group_lookup_planned_while_young_stays_an_index_probe(app, groups_session, planned_at):
    """Okta's group push looks a group up by displayName (through the list query: ORDER BY
    seq LIMIT, which made the users' lookup walk the organization). Planned at 20 or 300
    groups without statistics, it must still probe once there are 5,000."""
    from models import store
    from models.group import Group
    from web.scim import definitions as d
    from web.scim import filter as scim_filter
    from web.scim.query import compile_filter

    org = uuid.uuid4()
    groups_session.execute(GROUPS, {"org": org, "first": 1, "last": planned_at})
    with app.app_context():
        where = compile_filter(scim_filter.parse('displayName eq "Group 3"', d.GROUP_TYPE),
                               d.GROUP_TYPE)
    with recorded(groups_session, "groups") as sent, Session(bind=groups_session) as db:
        page = store.search(db, Group, org, where)
    assert [row.display_name for row in page.rows] == ["Group 3"]
    (statement, parameters), = sent
    lookup = Prepared(groups_session.connection.driver_connection, "group_lookup", statement)
    for _ in range(8):  # five custom plans, then the generic one is kept
        lookup.run(parameters)
    groups_session.execute(GROUPS, {"org": org, "first": planned_at + 1, "last": 5000})
    plan = lookup.plan(parameters, analyze=True)
    lookup.close()
    assert blocks(plan) < 20, plan  # the probe, not the organization's 5,000 groups


def test_an_email_filter_reads_the_email_index_first(app, session):
    """``emails.value eq``: PostgreSQL keeps no statistics for array elements that are all
    unique and guessed that 0.5 % of the users match, so it walked the organization in page
    order to fill a page (every one of 20,000 users here). The matching ids now come first,
    from the GIN index (web/scim/query.py: ``_has_email``)."""
    from models import store
    from models.user import User
    from web.scim import definitions as d
    from web.scim import filter as scim_filter
    from web.scim.query import compile_filter

    org = uuid.uuid4()
    session.execute(text(
        "INSERT INTO users (id, org_id, user_name, active, attrs, created, last_modified, "
        "version, manager_state, license_state, is_admin, emails_lower) "
        "SELECT gen_random_uuid(), :org, 'u' || n, true, '{}', now(), now(), 1, 'none', "
        "'none', false, ARRAY['u' || n || '@example.com'] FROM generate_series(1, 20000) n"),
        {"org": org})
    session.execute(text("VACUUM ANALYZE users"))  # and the GIN index's pending list merged
    with app.app_context():
        where = compile_filter(
            scim_filter.parse('emails.value eq "U19000@Example.com"', d.USER_TYPE), d.USER_TYPE)
    with recorded(session, "users") as sent, Session(bind=session) as db:
        page = store.search(db, User, org, where, limit=10)
    assert [row.user_name for row in page.rows] == ["u19000"]
    for statement, plan in analyzed_plans(session.connection.driver_connection, sent, "email"):
        assert blocks(plan) < 50, (statement, plan)  # the index's pages, not the users


def test_the_users_tab_reads_only_the_users_it_counts(app, session):
    """The admin Users tab's manager problems and active count read partial indexes of the
    problem and inactive users (migration 0011), not the organization's 20,000 users: every
    statement it sends about users reads under 50 blocks (each read them all before)."""
    from models.organization import Organization
    from web.admin import actions

    org = uuid.uuid4()
    session.execute(text(
        "INSERT INTO users (id, org_id, user_name, active, attrs, created, last_modified, "
        "version, manager_state, license_state, is_admin, emails_lower) "
        "SELECT gen_random_uuid(), :org, 'u' || n, n % 1000 <> 7, '{}', now(), now(), 1, "
        "CASE n % 1000 WHEN 1 THEN 'pending' WHEN 2 THEN 'invalid' ELSE 'none' END, "
        "'none', false, '{}' FROM generate_series(1, 20000) n"), {"org": org})
    session.execute(text("VACUUM ANALYZE users"))
    with recorded(session, "users") as sent, Session(bind=session) as db:
        overview = actions.users_overview(db, Organization(id=org, plan="paid", seats=10))
    assert overview["managers"]["count"] == 40
    assert [row["state"] for row in overview["managers"]["rows"]] == ["pending"] * 20 + [
        "invalid"] * 20
    for statement, plan in analyzed_plans(session.connection.driver_connection, sent, "tab"):
        assert blocks(plan) < 50, (statement, plan)


def test_an_active_eq_false_filter_reads_the_inactive_users_only(app, session):
    """``active eq false`` compiles to the column as a literal, which ix_users_inactive serves;
    through the stored attribute it read all 20,000 users to count the few that match."""
    from models import store
    from models.user import User
    from web.scim import definitions as d
    from web.scim import filter as scim_filter
    from web.scim.query import compile_filter

    org = uuid.uuid4()
    grow(session, org, 1, 20000)
    session.execute(text(
        "UPDATE users SET active = false, attrs = '{\"active\": false}' "
        "WHERE user_name IN ('u7@example.com', 'u19007@example.com')"))
    session.execute(text("VACUUM ANALYZE users"))
    with app.app_context():
        where = compile_filter(scim_filter.parse("active eq false", d.USER_TYPE), d.USER_TYPE)
    with recorded(session, "users") as sent, Session(bind=session) as db:
        page = store.search(db, User, org, where, limit=10)
    assert sorted(row.user_name for row in page.rows) == ["u19007@example.com", "u7@example.com"]
    assert page.total == 2
    for statement, plan in analyzed_plans(session.connection.driver_connection, sent, "off"):
        assert blocks(plan) < 50, (statement, plan)


def test_a_user_name_prefix_filter_reads_the_user_name_index(app, session):
    """``userName sw`` compiles to ``lower(user_name) LIKE 'prefix%'``, which the unique index
    of user names serves as a range since it is built with text_pattern_ops (migration 0014);
    with the collation's ordering it read all 50,000 users here to find 11. (In an organization
    of 20,000, PostgreSQL guesses that 1 % match and walks the page order instead.)"""
    from models import store
    from models.user import User
    from web.scim import definitions as d
    from web.scim import filter as scim_filter
    from web.scim.query import compile_filter

    org = uuid.uuid4()
    grow(session, org, 1, 50000)
    session.execute(text("VACUUM ANALYZE users"))
    with app.app_context():
        where = compile_filter(scim_filter.parse('userName sw "U4900"', d.USER_TYPE), d.USER_TYPE)
    with recorded(session, "users") as sent, Session(bind=session) as db:
        page = store.search(db, User, org, where, limit=5)
    assert [row.user_name for row in page.rows] == [
        f"u4900{n}@example.com" for n in ("", 0, 1, 2, 3)]
    assert page.total == 11
    for statement, plan in analyzed_plans(session.connection.driver_connection, sent, "sw"):
        assert blocks(plan) < 50, (statement, plan)


def test_failed_and_running_jobs_are_read_without_the_done_ones(app):
    """Done jobs stay (their dedup keys), so the jobs table grows with the users written. The
    admin tab's failed jobs, a re-sync's failed mails and the /metrics job gauges read the
    partial indexes of pending, running and failed jobs (migration 0012), not 20,000 done
    ones: under 50 blocks each (the admin tab's read and the gauges' read 286 before)."""
    from models.organization import Organization
    from tasks.resync import _resend_failed_mail
    from web.admin import actions
    from web.metrics import _QUERIES

    org = uuid.uuid4()
    with shadowed(app.config["DATABASE_URL"], "jobs") as conn:
        conn.execute(text(
            "INSERT INTO jobs (org_id, kind, dedup_key, subject_id, payload, state, attempts, "
            "progress_done, progress_total, created, updated) "
            "SELECT :org, 'mail.send', 'k' || n, NULL, '{}', "
            "CASE WHEN n % 5000 = 0 THEN 'failed' WHEN n = 7 THEN 'running' ELSE 'done' END, "
            "1, 0, 0, now(), now() FROM generate_series(1, 20000) n"), {"org": org})
        conn.execute(text("VACUUM ANALYZE jobs"))
        with recorded(conn, "jobs") as sent, Session(bind=conn) as db:
            failed = actions.failed_jobs(db, Organization(id=org))
            resent = _resend_failed_mail(db, org, dry_run=True)
        assert len(failed) == 4 and resent == 4
        counts = conn.execute(text(_QUERIES["jobs"])).all()
        assert sorted(tuple(row) for row in counts) == [("mail.send", "failed", 4),
                                                        ("mail.send", "running", 1)]
        raw = conn.connection.driver_connection
        for statement, plan in analyzed_plans(raw, [*sent, (_QUERIES["jobs"], {})], "jobs"):
            assert blocks(plan) < 50, (statement, plan)
