"""partial indexes for the license check: what changes, not every user

A license check (models/licensing.py) releases the licenses of deactivated users and licenses
active users waiting for a seat. Both lookups read every user of the organization through the
(org_id, ...) indexes and filtered them: 1.4 ms at 1,000 users, growing with the organization,
and a check runs after every burst of writes. These indexes hold only the users the check has
to change, so it costs what changes.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_users_license_to_release ON users (org_id) "
        "WHERE active IS FALSE AND license_state <> 'none'"
    )
    op.execute(
        "CREATE INDEX ix_users_license_wanted ON users (org_id, seq) "
        "WHERE active IS TRUE AND license_state <> 'licensed'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_users_license_wanted")
    op.execute("DROP INDEX ix_users_license_to_release")
