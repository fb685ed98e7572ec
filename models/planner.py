"""Statistics for the users table while it is young, so that cached plans keep up with it.

PostgreSQL keeps a prepared statement's generic plan on each connection until the table's next
ANALYZE, and our hot statements are prepared (models/db.py: driver_rows; psycopg prepares any
statement after five runs). A plan made while the table was small can walk what an index would
probe once it has grown: without statistics, at 200-300 users, the userName lookup's generic
plan probed ``ix_users_org_employee_number`` on org_id alone and filtered every user of the
organization (tests/integration/test_planner.py); in 4 of 7 initial syncs measured
(bench/run.py, W1) a lookup then averaged 37-361 buffer hits instead of 1-3. Autovacuum
re-analyzes a table after 10 % of changes, but looks only once a minute (autovacuum_naptime),
and an initial sync grows the table tenfold in that time.

So the worker, after a batch of creates (the manager pass, tasks/managers.py), analyzes users
whenever it has doubled since its last ANALYZE. Once the table has statistics of
``GROWN_UP`` users, autovacuum's pace is enough and the process stops looking.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("workteam.planner")

GROWN_UP = 100_000  # users seen by the last ANALYZE after which autovacuum suffices
FIRST_AT = 100  # no ANALYZE of a table smaller than this: every plan is cheap there

_grown_up = False

_SIZES = text(
    "SELECT c.reltuples, s.n_live_tup FROM pg_class c "
    "JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = CAST('users' AS regclass)"
)


def analyze_users_while_young(conn: Connection) -> bool:
    """ANALYZE users if it has doubled since its last ANALYZE (or has never had one and holds
    ``FIRST_AT`` users); True if it ran. ``conn``: outside a transaction (autocommit), so the
    statistics are visible at once. A lock held by another ANALYZE or VACUUM skips it."""
    global _grown_up
    if _grown_up:
        return False
    row = conn.execute(_SIZES).one_or_none()
    if row is None:
        return False
    analyzed, live = max(row.reltuples, 0.0), row.n_live_tup
    if analyzed >= GROWN_UP:
        _grown_up = True
        return False
    if live < max(2 * analyzed, FIRST_AT):
        return False
    # SKIP_LOCKED: an ANALYZE or VACUUM running already will do; never wait for it.
    conn.execute(text("ANALYZE (SKIP_LOCKED) users"))
    log.info("analyzed users: %d live rows, %d at the last ANALYZE", live, analyzed)
    return True


def refresh_young_statistics(engine: Engine) -> bool:
    """``analyze_users_while_young`` on a connection of ``engine`` (an autocommit one), for
    the worker after its manager pass. Best effort: a failure is logged, never raised, since
    the pass it follows has committed already and autovacuum will do the work later."""
    if _grown_up:
        return False
    try:
        with engine.connect() as conn:
            return analyze_users_while_young(conn)
    except SQLAlchemyError:
        log.warning("could not check the users table's statistics", exc_info=True)
        return False
