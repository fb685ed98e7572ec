"""a maintained count of each organization's users, and a counter of their inserts and deletes

An import pages through every user with startIndex/count and needs totalResults on every page.
COUNT(*) reads every index entry of the organization (5 ms at 10,000 users, right after
updates; 0.5 s at a million), on every page: an import cost grew with the square of the
organization. Triggers keep the count in `user_tallies` instead, in the same transaction as the
rows, so reading it is exact and costs a few rows.

Rows are per (organization, shard), the shard being the writing backend's pid modulo 64:
concurrent creates in one organization update different rows instead of queueing on one row
lock. `changes` only grows (every insert and delete adds to it): when it has not moved, no user
of the organization was added or removed, so page boundaries recorded since are still exact
(web/scim/positions.py).

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SHARDS = 64


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE user_tallies (
            org_id uuid NOT NULL,
            shard smallint NOT NULL,
            users bigint NOT NULL,
            changes bigint NOT NULL,
            CONSTRAINT pk_user_tallies PRIMARY KEY (org_id, shard)
        )
        """
    )
    # Statement-level: one upsert per statement (a bulk insert of 100,000 rows is one), reading
    # the transition table. ORDER BY: two statements touching several organizations lock their
    # rows in the same order.
    op.execute(
        f"""
        CREATE FUNCTION user_tallies_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO user_tallies AS t (org_id, shard, users, changes)
            SELECT org_id, pg_backend_pid() % {SHARDS}, count(*), count(*)
            FROM inserted GROUP BY org_id ORDER BY org_id
            ON CONFLICT (org_id, shard) DO UPDATE
            SET users = t.users + excluded.users, changes = t.changes + excluded.changes;
            RETURN NULL;
        END $$
        """
    )
    # An organization's deletion cascades to its users: its tally goes with it instead of being
    # written again for an organization that no longer exists.
    op.execute(
        f"""
        CREATE FUNCTION user_tallies_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO user_tallies AS t (org_id, shard, users, changes)
            SELECT org_id, pg_backend_pid() % {SHARDS}, -count(*), count(*)
            FROM deleted d
            WHERE EXISTS (SELECT 1 FROM organizations o WHERE o.id = d.org_id)
            GROUP BY org_id ORDER BY org_id
            ON CONFLICT (org_id, shard) DO UPDATE
            SET users = t.users + excluded.users, changes = t.changes + excluded.changes;
            DELETE FROM user_tallies t
            WHERE t.org_id IN (SELECT org_id FROM deleted)
              AND NOT EXISTS (SELECT 1 FROM organizations o WHERE o.id = t.org_id);
            RETURN NULL;
        END $$
        """
    )
    # TRUNCATE has no transition table: every count is zero after it, and `changes` moves on
    # so that no recorded page boundary survives it.
    op.execute(
        """
        CREATE FUNCTION user_tallies_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE user_tallies SET users = 0, changes = changes + 1;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER user_tallies_insert AFTER INSERT ON users "
        "REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT "
        "EXECUTE FUNCTION user_tallies_insert()"
    )
    op.execute(
        "CREATE TRIGGER user_tallies_delete AFTER DELETE ON users "
        "REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT "
        "EXECUTE FUNCTION user_tallies_delete()"
    )
    op.execute(
        "CREATE TRIGGER user_tallies_truncate AFTER TRUNCATE ON users "
        "FOR EACH STATEMENT EXECUTE FUNCTION user_tallies_truncate()"
    )
    # The users already there: counted under a lock that keeps writers out until the triggers
    # count them (the migration's transaction commits the triggers and the counts together).
    op.execute("LOCK TABLE users IN SHARE MODE")
    op.execute(
        "INSERT INTO user_tallies (org_id, shard, users, changes) "
        "SELECT org_id, 0, count(*), count(*) FROM users GROUP BY org_id"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER user_tallies_truncate ON users")
    op.execute("DROP TRIGGER user_tallies_delete ON users")
    op.execute("DROP TRIGGER user_tallies_insert ON users")
    op.execute("DROP FUNCTION user_tallies_truncate()")
    op.execute("DROP FUNCTION user_tallies_delete()")
    op.execute("DROP FUNCTION user_tallies_insert()")
    op.execute("DROP TABLE user_tallies")
