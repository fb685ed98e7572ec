"""an organization's tally is read by one function, which walks its index with an index scan

Every create appends a row to user_tallies and every 64th folds the organization's rows into
one (migration 0008), so between two autovacuum passes the table holds a dead row per create
and its primary key an entry for each: 10,000 after an initial sync of 10,000 users. PostgreSQL
could plan the reads of a tally, and each connection's folds, as bitmap scans, which step over
every one of those entries every time and never mark them dead: 0.5-1.4 ms a read, twice on
every import page (users and changes), and on every license check, until the next VACUUM. An
index scan marks the entries of dead rows it meets (the first read after a fold), so the reads
after it skip them, and the inserts that follow delete them from the index page instead of
splitting it: 0.15 ms a read on the same table, and 100 import pages' statements over 10,000
such rows took 186-201 ms instead of 285-341 (bench/tally_reads.py). The function call adds
~5 µs (PL/pgSQL keeps its plan for the session; a SQL function would plan its query on every
call, ~100 µs). The planner's settings on the function leave the index scan as its only plan
(unless a session turns index scans off, which the app never does); the function is STABLE, so
it reads with its caller's snapshot (an import page's total still agrees with its rows).

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION user_tallies_sum(org uuid, OUT users bigint, OUT changes bigint,
                                         OUT licensed bigint, OUT waiting bigint)
        LANGUAGE plpgsql STABLE
        SET enable_bitmapscan = off SET enable_seqscan = off
        AS $$
        BEGIN
            SELECT coalesce(sum(t.users), 0), coalesce(sum(t.changes), 0),
                   coalesce(sum(t.licensed), 0), coalesce(sum(t.waiting), 0)
            INTO users, changes, licensed, waiting
            FROM user_tallies t WHERE t.org_id = org;
        END $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION user_tallies_sum(uuid)")
