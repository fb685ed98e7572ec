"""the welcome records of users deleted before now go

A welcome record (sent_mail, template 'welcome', event key 'welcome:<user id>') holds the
user's email address and was kept for ever, after the user too. Since this release a user's
deletion deletes it (models/outbox.py ``forget_welcome``); this deletes those of the users
deleted before. One statement: a welcome record per user ever licensed, each looked up by the
users' primary key (12.7 s for a million records, half of them of deleted users). It locks only
the rows it deletes, which nothing else touches: the service goes on. Nothing to put back on
downgrade.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def upgrade() -> None:
    # CASE: the cast is tried only on a key that is a user id (all are; one that is not must
    # not fail the release), whatever order PostgreSQL evaluates the conditions in.
    op.execute(
        f"""
        DELETE FROM sent_mail s
        WHERE s.template = 'welcome'
          AND NOT EXISTS (
              SELECT 1 FROM users u
              WHERE u.id = CASE WHEN s.event_key ~ '^welcome:{UUID}$'
                                THEN CAST(substr(s.event_key, 9) AS uuid) END)
          AND s.event_key ~ '^welcome:{UUID}$'
        """
    )


def downgrade() -> None:
    pass
