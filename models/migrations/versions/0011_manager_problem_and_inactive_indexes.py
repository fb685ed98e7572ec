"""partial indexes for the counts an admin and a scrape read: manager problems, inactive users

The admin Users tab lists and counts the users whose manager reference is pending or invalid,
and counts the active users; /metrics counts users by manager state; a SCIM filter
`active eq false` looks for the inactive. Each read every user of the organization (of every
organization, for /metrics): 340-500 ms apiece at 500,000 users with their attributes. These
indexes hold only the users those reads are about, which are few in a healthy directory, so
they cost what they find. An active user with no manager problem is in neither, so a sync's
creates and updates do not write them.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_users_manager_problem ON users (org_id, manager_state, seq) "
        "WHERE manager_state IN ('pending', 'invalid')"
    )
    op.execute("CREATE INDEX ix_users_inactive ON users (org_id) WHERE active IS FALSE")


def downgrade() -> None:
    op.execute("DROP INDEX ix_users_inactive")
    op.execute("DROP INDEX ix_users_manager_problem")
