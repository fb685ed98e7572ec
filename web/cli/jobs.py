"""``flask jobs ...``: the outbox, for operators. JSON lines on stdout."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select, update

from models.db import utcnow
from models.jobs import KIND_MAIL
from models.outbox import JOB_STATES, Job
from tasks.outbox import publish, reset_broker_backoff
from web.cli.common import db_session, echo_json


def job_json(job: Job) -> dict:
    return {
        "id": job.id,
        "org_id": str(job.org_id),
        "kind": job.kind,
        "subject_id": job.subject_id,
        "state": job.state,
        "attempts": job.attempts,
        "error": job.error,
        "created": job.created.isoformat(),
        "updated": job.updated.isoformat() if job.updated else None,
    }


@click.group("jobs", cls=AppGroup, help="Follow-up jobs (the transactional outbox).")
def group() -> None:
    pass


@group.command("list", help="List jobs, newest first.")
@click.option("--state", type=click.Choice(JOB_STATES))
@click.option("--kind", help="e.g. managers.resolve, licenses.check, " + KIND_MAIL)
@click.option("--org", "org_id", help="only this organization's jobs")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
def list_jobs(state: str | None, kind: str | None, org_id: str | None, limit: int) -> None:
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if state:
        stmt = stmt.where(Job.state == state)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    if org_id:
        stmt = stmt.where(Job.org_id == org_id)
    with db_session() as session:
        for job in session.scalars(stmt):
            echo_json(job_json(job))


@group.command("retry", help="Put failed (or stuck pending) jobs back to pending and publish.")
@click.argument("job_id", type=int, required=False)
@click.option("--all-failed", is_flag=True, help="every failed job")
def retry(job_id: int | None, all_failed: bool) -> None:
    if (job_id is None) == (not all_failed):
        raise click.UsageError("give either JOB_ID or --all-failed")
    where = Job.state == "failed" if all_failed else Job.id == job_id
    with db_session() as session:
        ids = list(
            session.scalars(
                update(Job)
                .where(where, Job.state.in_(("failed", "pending")))
                .values(
                    state="pending", attempts=0, error=None, updated=utcnow(),
                    published_at=utcnow(), finished_at=None,
                )
                .returning(Job.id)
            )
        )
        session.commit()
    if job_id is not None and not ids:
        raise click.ClickException(f"job {job_id} does not exist or is not failed/pending")
    reset_broker_backoff()
    publish(ids)
    echo_json({"retried": ids})
