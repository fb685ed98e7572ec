"""the tally of users counts each organization's users waiting for a seat too

How many users wait for a seat (license_state 'unlicensed') was counted from their index on
every admin Users tab, every /metrics scrape, every overflow notice and every re-sync summary:
41-90 ms with 500,000 waiting (bench/bench_admin_pages.py), growing with them. The tally now
keeps that number as migration 0010 made it keep the licensed users: its insert and delete
triggers count the waiting users among the rows they see, and the license check
(models/licensing.py), the only writer of license_state, appends what it changed.

The tally function takes one more argument, so during a release a license check run by a
worker still on the old code fails (its call names the old signature) and rolls back, instead
of changing waiting users without counting them; the new workers' license sweep (every
WORKTEAM_LICENSE_SWEEP_SECONDS) checks every paid organization again.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

FOLD_EVERY = 64
LOCK_CLASS = 8008  # migration 0008's advisory lock space

# The counted license states: their tally column and their license_state value.
LICENSED = [("licensed", "licensed")]
LICENSED_AND_WAITING = [("licensed", "licensed"), ("waiting", "unlicensed")]


def _add_function(counted: list[tuple[str, str]]) -> str:
    """user_tallies_add as migration 0008 made it, with a delta per counted column."""
    params = "".join(f", {col}_delta bigint" for col, _ in counted)
    cols = "".join(f", {col}" for col, _ in counted)
    values = "".join(f", {col}_delta" for col, _ in counted)
    sums = "".join(f", sum({col})" for col, _ in counted)
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
                        RETURNING users, changes{cols}
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


def _row_functions(counted: list[tuple[str, str]]) -> list[str]:
    """The insert, delete and truncate triggers' functions, counting the ``counted`` states."""
    added = "".join(f", count(*) FILTER (WHERE license_state = '{state}')" for _, state in counted)
    removed = "".join(
        f", -count(*) FILTER (WHERE license_state = '{state}')" for _, state in counted)
    zeroed = "".join(f", {col} = 0" for col, _ in counted)
    return [
        f"""
        CREATE OR REPLACE FUNCTION user_tallies_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM user_tallies_add(org_id, count(*), count(*){added})
            FROM inserted GROUP BY org_id;
            RETURN NULL;
        END $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION user_tallies_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM user_tallies_add(org_id, -count(*), count(*){removed})
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
            UPDATE user_tallies SET users = 0, changes = changes + 1{zeroed};
            RETURN NULL;
        END $$
        """,
    ]


def upgrade() -> None:
    # Writers wait until the triggers count waiting users and the present ones are counted.
    op.execute("LOCK TABLE users IN SHARE MODE")
    op.execute("ALTER TABLE user_tallies ADD COLUMN waiting bigint NOT NULL DEFAULT 0")
    op.execute("DROP FUNCTION user_tallies_add(uuid, bigint, bigint, bigint)")
    op.execute(_add_function(LICENSED_AND_WAITING))
    for statement in _row_functions(LICENSED_AND_WAITING):
        op.execute(statement)
    op.execute(
        "INSERT INTO user_tallies (org_id, users, changes, licensed, waiting) "
        "SELECT org_id, 0, 0, 0, count(*) FROM users WHERE license_state = 'unlicensed' "
        "GROUP BY org_id"
    )


def downgrade() -> None:
    op.execute("LOCK TABLE users IN SHARE MODE")
    op.execute("DROP FUNCTION user_tallies_add(uuid, bigint, bigint, bigint, bigint)")
    op.execute(_add_function(LICENSED))
    for statement in _row_functions(LICENSED):
        op.execute(statement)
    op.execute("ALTER TABLE user_tallies DROP COLUMN waiting")
