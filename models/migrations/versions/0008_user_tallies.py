"""a maintained count of each organization's users, and a counter of their inserts and deletes

An import pages through every user with startIndex/count and needs totalResults on every page.
COUNT(*) reads every index entry of the organization (5 ms at 10,000 users, right after
updates; 0.5 s at a million), on every page: an import cost grew with the square of the
organization. Triggers keep the count in `user_tallies` instead, in the same transaction as the
rows, so reading it is exact and costs a few rows.

Each statement that inserts or deletes users appends one row per organization (the change in
users, and the number of rows changed); nothing is updated in place, so concurrent creates in
one organization never wait on each other, and a transaction that inserts a million users one
statement at a time does not walk a million versions of one row. Every 64th row folds the
organization's rows into one (under an advisory lock, skipped when another transaction is
folding), so a tally stays a few dozen rows. `changes` only grows: while its sum has not moved,
no user of the organization was added or removed, so page boundaries recorded since are still
exact (web/scim/positions.py).

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FOLD_EVERY = 64
# The two-key advisory lock space (apart from the one-key locks of models/jobs.py and
# models/managers.py): (this class, hash of the organization).
LOCK_CLASS = 8008


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE user_tallies (
            org_id uuid NOT NULL,
            id bigint GENERATED ALWAYS AS IDENTITY,
            users bigint NOT NULL,
            changes bigint NOT NULL,
            CONSTRAINT pk_user_tallies PRIMARY KEY (org_id, id)
        )
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION user_tallies_add(org uuid, users_delta bigint, changes_delta bigint)
        RETURNS void LANGUAGE plpgsql AS $$
        DECLARE
            added bigint;
            folded_into bigint;
            -- The row this transaction last folded into: a later fold in the same transaction
            -- starts there, instead of stepping again over the index entries of the rows it
            -- deleted (dead to no one else until it commits), which would make a long
            -- transaction's folds cost the square of its statements.
            since text := 'workteam.tally_fold_' || replace(org::text, '-', '');
        BEGIN
            INSERT INTO user_tallies (org_id, users, changes)
            VALUES (org, users_delta, changes_delta) RETURNING id INTO added;
            IF added % {FOLD_EVERY} = 0
               AND pg_try_advisory_xact_lock({LOCK_CLASS}, hashtext(org::text)) THEN
                BEGIN
                    WITH folded AS (
                        DELETE FROM user_tallies
                        WHERE org_id = org
                          AND id >= coalesce(nullif(current_setting(since, true), '')::bigint, 0)
                        RETURNING users, changes
                    )
                    INSERT INTO user_tallies (org_id, users, changes)
                    SELECT org, sum(users), sum(changes) FROM folded
                    RETURNING id INTO folded_into;
                    PERFORM set_config(since, folded_into::text, true);
                EXCEPTION WHEN serialization_failure THEN
                    -- A repeatable-read transaction that cannot see the last fold: the rows
                    -- stay as they are (still exact), and a later statement folds them.
                    NULL;
                END;
            END IF;
        END $$
        """
    )
    # Statement-level, reading the transition table: one row per organization per statement (a
    # bulk insert of 100,000 users is one).
    op.execute(
        """
        CREATE FUNCTION user_tallies_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM user_tallies_add(org_id, count(*), count(*))
            FROM inserted GROUP BY org_id;
            RETURN NULL;
        END $$
        """
    )
    # An organization's deletion cascades to its users: its tally goes with it instead of being
    # written again for an organization that no longer exists.
    op.execute(
        """
        CREATE FUNCTION user_tallies_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM user_tallies_add(org_id, -count(*), count(*))
            FROM deleted d
            WHERE EXISTS (SELECT 1 FROM organizations o WHERE o.id = d.org_id)
            GROUP BY org_id;
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
        "INSERT INTO user_tallies (org_id, users, changes) "
        "SELECT org_id, count(*), count(*) FROM users GROUP BY org_id"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER user_tallies_truncate ON users")
    op.execute("DROP TRIGGER user_tallies_delete ON users")
    op.execute("DROP TRIGGER user_tallies_insert ON users")
    op.execute("DROP FUNCTION user_tallies_truncate()")
    op.execute("DROP FUNCTION user_tallies_delete()")
    op.execute("DROP FUNCTION user_tallies_insert()")
    op.execute("DROP FUNCTION user_tallies_add(uuid, bigint, bigint)")
    op.execute("DROP TABLE user_tallies")
