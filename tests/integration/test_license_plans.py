"""A license check's statements plan as well generic as custom. psycopg prepares a statement
after five runs on a connection, and PostgreSQL may then keep its generic plan; with the
license state a bound parameter, that plan could not use the partial indexes and read every
licensed user of the organization (models/licensing.py: ``state_is``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from models import licensing
from models.db import sqlalchemy_url
from models.organization import Organization
from tests.conftest import make_org

USERS = 20_000


@pytest.fixture
def session(app) -> Iterator[Connection]:
    """A connection of its own in which a temporary ``users`` (the real table's indexes, no
    triggers) shadows the real one: 20,000 users analyzed without touching the shared table."""
    engine = create_engine(sqlalchemy_url(app.config["DATABASE_URL"]), poolclass=NullPool)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("CREATE TEMP TABLE users (LIKE public.users INCLUDING ALL)"))
        yield conn
    engine.dispose()


def statements(conn: Connection, org_id: object) -> list[tuple[str, dict]]:
    """What ``reconcile`` sends about users (rolled back)."""
    seen: list[tuple[str, dict]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        if re.search(r"\bFROM users\b|^UPDATE users\b", statement):
            seen.append((statement, dict(parameters)))

    event.listen(conn, "before_cursor_execute", record)
    try:
        with Session(bind=conn) as db:
            licensing.reconcile(db, org_id)
            db.rollback()
    finally:
        event.remove(conn, "before_cursor_execute", record)
    return seen


def cost(raw: psycopg.Connection, statement: str, parameters: dict, mode: str) -> float:
    """The planner's total cost of ``statement`` prepared, under ``plan_cache_mode = mode``."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    prepared = re.sub(r"%\((\w+)\)s", number, statement)
    raw.execute(f"SET plan_cache_mode = {mode}")
    raw.execute(f"PREPARE checked AS {prepared}")
    cursor = psycopg.ClientCursor(raw)
    args = ", ".join(["%s"] * len(names))
    try:
        cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE checked({args})",
                       [parameters[name] for name in names])
        return float(cursor.fetchone()[0][0]["Plan"]["Total Cost"])
    finally:
        raw.execute("DEALLOCATE checked")


@pytest.mark.parametrize("seats", [USERS + 100, USERS // 2], ids=["grant", "take-back"])
def test_generic_plans_cost_what_custom_ones_do(app, session, seats):
    org = make_org(app, seats=seats)
    session.execute(text(
        "INSERT INTO users (id, org_id, user_name, active, attrs, created, last_modified, "
        "version, manager_state, license_state, licensed_at, is_admin, emails_lower) "
        "SELECT gen_random_uuid(), :org, 'u' || n || '@example.com', n % 50 <> 0, '{}', now(), "
        "now(), 1, 'none', CASE WHEN n % 7 = 0 THEN 'unlicensed' ELSE 'licensed' END, now(), "
        "false, '{}' FROM generate_series(1, :users) n"), {"org": org.id, "users": USERS})
    session.execute(text("ANALYZE users"))
    with app.extensions["db.sessions"]() as db:
        assert db.get(Organization, org.id).plan == "paid"

    sent = statements(session, org.id)
    assert len(sent) >= 5  # the releases, a grant or take-back, the waiting count
    raw = session.connection.driver_connection
    for statement, parameters in sent:
        custom = cost(raw, statement, parameters, "force_custom_plan")
        generic = cost(raw, statement, parameters, "force_generic_plan")
        # Bound states made the generic plans of the releases and the count 100-1,000 x dearer.
        assert generic <= 2 * custom + 50, (statement, custom, generic)
    raw.execute("RESET plan_cache_mode")
