"""users.seq is indexed only behind org_id

Every query that walks users in insertion order does so within one organization (import
pages, cursors, re-syncs, license and manager passes), and has an (org_id, seq) index for it.
The unique index on seq alone let PostgreSQL walk every organization's users in seq order and
filter them: its statistics take an organization's users to be spread evenly through seq, but
an organization provisioned after another has all of its users after that one's. With five
organizations of 2,000 users, the first import page of the last one read the 8,000 users before
it (4.1 ms instead of 0.9); with a million-user organization before it, a million. seq is an
identity column, so its values stay unique without the index.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE users DROP CONSTRAINT uq_users_seq")


def downgrade() -> None:
    op.execute("ALTER TABLE users ADD CONSTRAINT uq_users_seq UNIQUE (seq)")
