"""the unique index of user names serves `userName sw` too

A SCIM filter `userName sw "..."` compiles to `lower(user_name) LIKE '...%'`. The unique index
on (org_id, lower(user_name)) compares by the database's collation, which PostgreSQL can use for
a LIKE prefix only when the collation is "C", so the filter read every user of the
organization (250-320 ms at 300,000 users, bench/bench_filters.py). Built with the operator
class text_pattern_ops instead, the same index serves the prefix as a range; its equality is
the same byte equality, so `userName eq`, the uniqueness it enforces and ON CONFLICT on it are
unchanged, and no index is added to the writes.

Nothing here blocks the service's reads and writes: the new index is built CONCURRENTLY
(0.98 s in all at a million users) under a temporary name, the old one is dropped CONCURRENTLY (a
plain DROP INDEX takes the table's ACCESS EXCLUSIVE lock, which waits behind any long
transaction on users and holds every request queued behind it), and the new one takes the old
name. Between the two, names stay unique: the new index enforces it as soon as it is valid.
A run interrupted at any step (these steps commit one by one) is taken up where it stopped: an
index left invalid by an interrupted build is dropped and built again, a valid one is kept.

Revision ID: 0014
Revises: 0013
"""

from alembic import op
from sqlalchemy import text

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BUILDING = "uq_users_org_user_name_building"


CURRENT = "uq_users_org_user_name"


def _valid(name: str) -> bool | None:
    """Whether the index ``name`` is valid; None when there is none."""
    return op.get_bind().execute(
        text("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
             "WHERE c.relname = :name"), {"name": name}).scalar()


def _replace(opclass: str) -> None:
    with op.get_context().autocommit_block():
        if _valid(BUILDING) is False:
            op.execute(f"DROP INDEX CONCURRENTLY {BUILDING}")
        if _valid(BUILDING) is None:
            op.execute(
                f"CREATE UNIQUE INDEX CONCURRENTLY {BUILDING} "
                f"ON users (org_id, lower(user_name){opclass})"
            )
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {CURRENT}")
        # Renaming an index takes SHARE UPDATE EXCLUSIVE: reads and writes go on.
        op.execute(f"ALTER INDEX {BUILDING} RENAME TO {CURRENT}")


def upgrade() -> None:
    _replace(" text_pattern_ops")


def downgrade() -> None:
    _replace("")
