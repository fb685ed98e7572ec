"""pending manager references looked up case-insensitively (a userName may differ in case)

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_users_pending_manager_lower ON users (org_id, lower(manager_value)) "
        "WHERE manager_state = 'pending'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_users_pending_manager_lower")
