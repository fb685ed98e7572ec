"""a partial index of the jobs that are running or failed, for the reads that look for them

Done jobs stay (their dedup keys make follow-ups exactly-once), so the jobs table grows by
about one row per user written. /metrics counted running and failed jobs over every job
(348 ms at 2,000,000 jobs), and the admin Users tab's failed jobs and a re-sync's failed mails
read every job index entry of the organization (55 ms at 1,000,000). Only a re-sync is ever
running (other jobs go from pending to done) and failed jobs are rare, so this index stays
small and a sync's jobs never enter it (pending jobs have ix_jobs_pending).

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_jobs_running_or_failed ON jobs (org_id, state, updated) INCLUDE (kind) "
        "WHERE state IN ('running', 'failed')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_jobs_running_or_failed")
