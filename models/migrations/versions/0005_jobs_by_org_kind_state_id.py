"""the jobs index by (organization, kind, state) also orders by id

A mail batch picks the next waiting mail of its organization with ORDER BY id LIMIT 1. On the
old (org_id, kind, state) index PostgreSQL read and sorted every waiting mail for each pick
(38-58 ms with 28,000-75,000 waiting, so welcome mails went out at about 20 a second); with id
in the index the rows come in order and the pick reads one.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_jobs_org_kind_state_id ON jobs (org_id, kind, state, id)")
    op.execute("DROP INDEX ix_jobs_org_kind_state")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_jobs_org_kind_state ON jobs (org_id, kind, state)")
    op.execute("DROP INDEX ix_jobs_org_kind_state_id")
