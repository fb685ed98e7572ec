"""group members: nested group members, members listed in insertion order

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("memberships", sa.Column("member_group_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_memberships_member_group_id_groups"),
        "memberships",
        "groups",
        ["member_group_id"],
        ["id"],
        ondelete="CASCADE",
    )
    # Members are read in insertion order, a page at a time: (group_id, seq) serves
    # "WHERE group_id = ? ORDER BY seq LIMIT n" without sorting a 100,000-member group.
    op.create_index("ix_memberships_group_seq", "memberships", ["group_id", "seq"])
    op.create_index("ix_memberships_member_group_id", "memberships", ["member_group_id"])


def downgrade() -> None:
    op.drop_index("ix_memberships_member_group_id", table_name="memberships")
    op.drop_index("ix_memberships_group_seq", table_name="memberships")
    op.drop_constraint(
        op.f("fk_memberships_member_group_id_groups"), "memberships", type_="foreignkey"
    )
    op.drop_column("memberships", "member_group_id")
