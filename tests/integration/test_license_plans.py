"""A license check's statements plan as well generic as custom. psycopg prepares a statement
after five runs on a connection, and PostgreSQL may then keep its generic plan; with the
license state a bound parameter, that plan could not use the partial indexes and read every
licensed user of the organization (models/licensing.py: ``state_is``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models import licensing
from tests.conftest import make_org
from tests.integration.plan_helpers import Prepared, recorded, shadowed

USERS = 20_000


@pytest.fixture
def session(app) -> Iterator[Connection]:
    """A temporary ``users`` shadows the real one: 20,000 users analyzed without touching the
    shared table; and a temporary tally, which the check appends its changes to (each
    statement commits here)."""
    with shadowed(app.config["DATABASE_URL"], "users", "user_tallies") as conn:
        yield conn


def cost(conn: Connection, statement: str, parameters: dict, mode: str) -> float:
    """The planner's total cost of ``statement`` prepared, under ``plan_cache_mode = mode``."""
    raw = conn.connection.driver_connection
    raw.execute(f"SET plan_cache_mode = {mode}")
    prepared = Prepared(raw, "checked", statement)
    try:
        return float(prepared.plan(parameters)["Total Cost"])
    finally:
        prepared.close()
        raw.execute("RESET plan_cache_mode")


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

    with recorded(session, "users") as sent, Session(bind=session) as db:
        licensing.reconcile(db, org.id)
        db.rollback()
    assert len(sent) >= 5  # the releases, a grant or take-back, the waiting count
    for statement, parameters in sent:
        custom = cost(session, statement, parameters, "force_custom_plan")
        generic = cost(session, statement, parameters, "force_generic_plan")
        # Bound states made the generic plans of the releases and the count 100-1,000 x dearer.
        assert generic <= 2 * custom + 50, (statement, custom, generic)
