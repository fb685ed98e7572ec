"""the tally of users counts each organization's licensed users too

A license check needs how many seats are taken: COUNT(*) of the organization's licensed users
read every one of their index entries on every check (27-34 ms at 100,000 licensed users,
vacuumed, an index-only scan; about ten times that at a million, and a sync runs a check about
every second). The tally of migration 0008 now keeps that number as well: its insert and
delete triggers count the licensed users among the rows they see, and the license check
(models/licensing.py), the only writer of license_state, appends what it changed, in its own
transaction. A seat count is then a sum over a few dozen rows (0.25 ms with the round trip at
100,000 users).

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FOLD_EVERY = 64
LOCK_CLASS = 8008  # migration 0008's advisory lock space


def _add_function(licensed: bool) -> str:
    """user_tallies_add as migration 0008 made it, with or without the licensed column."""
    params = ", licensed_delta bigint" if licensed else ""
    cols = ", licensed" if licensed else ""
    values = ", licensed_delta" if licensed else ""
    returned = ", licensed" if licensed else ""
    sums = ", sum(licensed)" if licensed else ""
    return f"""
        CREATE FUNCTION user_tallies_add(org uuid, users_delta bigint, changes_delta bigint
                                         {params})
        RETURNS void LANGUAGE plpgsql AS $$
        DECLARE
            added bigint;
            folded_into bigint;
            since text := 'workteam.tally_fold_' || replace(org::text, '-', '');
        BEGIN
            INSERT INTO user_tallies (org_id, users, changes{cols})
            VALUES (org, users_delta, changes_delta{values}) RETURNING id INTO added;
            IF added % {FOLD_EVERY} = 0
               AND pg_try_advisory_xact_lock({LOCK_CLASS}, hashtext(org::text)) THEN
                BEGIN
                    WITH folded AS (
                        DELETE FROM user_tallies
                        WHERE org_id = org
                          AND id >= coalesce(nullif(current_setting(since, true), '')::bigint, 0)
                        RETURNING users, changes{returned}
                    )
                    INSERT INTO user_tallies (org_id, users, changes{cols})
                    SELECT org, sum(users), sum(changes){sums} FROM folded
                    RETURNING id INTO folded_into;
                    PERFORM set_config(since, folded_into::text, true);
                EXCEPTION WHEN serialization_failure THEN
                    NULL;
                END;
            END IF;
        END $$
        """


def _row_functions(licensed: bool) -> list[str]:
    """The insert and delete triggers' functions (0008's, counting licensed rows or not)."""
    extra = ", count(*) FILTER (WHERE license_state = 'licensed')"
    negative = ", -count(*) FILTER (WHERE license_state = 'licensed')"
    return [
        f"""
        CREATE OR REPLACE FUNCTION user_tallies_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM user_tallies_add(org_id, count(*), count(*){extra if licensed else ""})
            FROM inserted GROUP BY org_id;
            RETURN NULL;
        END $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION user_tallies_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM user_tallies_add(org_id, -count(*), count(*){negative if licensed else ""})
            FROM deleted d
            WHERE EXISTS (SELECT 1 FROM organizations o WHERE o.id = d.org_id)
            GROUP BY org_id;
            DELETE FROM user_tallies t
            WHERE t.org_id IN (SELECT org_id FROM deleted)
              AND NOT EXISTS (SELECT 1 FROM organizations o WHERE o.id = t.org_id);
            RETURN NULL;
        END $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION user_tallies_truncate() RETURNS trigger LANGUAGE plpgsql
        AS $$
        BEGIN
            UPDATE user_tallies SET users = 0, changes = changes + 1{
                ", licensed = 0" if licensed else ""};
            RETURN NULL;
        END $$
        """,
    ]


def upgrade() -> None:
    # Writers wait until the triggers count licensed users and the present ones are counted.
    op.execute("LOCK TABLE users IN SHARE MODE")
    op.execute("ALTER TABLE user_tallies ADD COLUMN licensed bigint NOT NULL DEFAULT 0")
    op.execute("DROP FUNCTION user_tallies_add(uuid, bigint, bigint)")
    op.execute(_add_function(licensed=True))
    for statement in _row_functions(licensed=True):
        op.execute(statement)
    op.execute(
        "INSERT INTO user_tallies (org_id, users, changes, licensed) "
        "SELECT org_id, 0, 0, count(*) FROM users WHERE license_state = 'licensed' "
        "GROUP BY org_id"
    )


def downgrade() -> None:
    op.execute("LOCK TABLE users IN SHARE MODE")
    op.execute("DROP FUNCTION user_tallies_add(uuid, bigint, bigint, bigint)")
    op.execute(_add_function(licensed=False))
    for statement in _row_functions(licensed=False):
        op.execute(statement)
    op.execute("ALTER TABLE user_tallies DROP COLUMN licensed")
