"""License checks: ``tasks.licenses.check(job_id)`` and the periodic reconciliation.

Every create, reactivation, deactivation and delete in a paid organization makes sure a check
of its organization is waiting (one coalesced job for any number of writes: models/jobs.py).
A check locks the organization's row, so checks of one organization run one at a time and
never license more than its seats (models/licensing.py has the rule). A running check also
covers the other committed check jobs of its organization (seat changes, re-syncs).
"""

from __future__ import annotations

import logging
import uuid

from celery import Task, shared_task
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import licensing
from models.db import any_of, utcnow
from models.jobs import COALESCED_SUFFIX, KIND_LICENSE_CHECK, KIND_MAIL, enqueue_many
from models.organization import Organization
from models.outbox import Job, welcome_event
from tasks import db, notifications
from tasks.outbox import publish, run_job

log = logging.getLogger("workteam.licenses")


def reconcile_org(session: Session, org_id: uuid.UUID) -> list[int]:
    """Recompute the organization's licenses now (no commit); write the mail jobs it calls
    for and return the ids to publish after commit (welcome mails: one per BATCH, see below).
    Used by the check task, the sweep and the re-sync."""
    result = licensing.reconcile(session, org_id)
    jobs: list[int | None] = []
    welcome = enqueue_many(
        session,
        org_id,
        KIND_MAIL,
        [
            # One welcome per user, ever: the event key is the dedup key.
            (f"{KIND_MAIL}:{welcome_event(user_id)}", str(user_id),
             {"template": "welcome", "event": welcome_event(user_id),
              "recipient_id": str(user_id), "user_id": str(user_id)})
            for user_id in result.licensed
        ],
    )
    # One task per batch of welcome mails: each send task also sends the others waiting
    # (tasks/notifications.py); the outbox sweep republishes any left over.
    jobs += welcome[:: notifications.BATCH]
    if result.opened_overflow is not None:
        episode = result.opened_overflow.isoformat()
        jobs += notifications.to_admins(
            session, org_id, "overflow", f"overflow:{org_id}:{episode}", {"episode": episode}
        )
    if result.licensed or result.unlicensed or result.opened_overflow:
        log.info(
            "org %s seats %d in use %d (+%d -%d)%s",
            org_id, result.seats, result.in_use, len(result.licensed), len(result.unlicensed),
            ", users waiting" if result.waiting else "",
        )
    return [j for j in jobs if j is not None]


def handle(session: Session, job: Job) -> list[int]:
    # Other check jobs of this organization committed before this point are covered by this
    # run (their user changes are visible to the statements below): close them with this one.
    # Writes enqueue one coalesced job per organization (models/jobs.py); others come from
    # `flask org seats` and the re-sync.
    covered = list(
        session.scalars(
            select(Job.id)
            .where(
                Job.org_id == job.org_id,
                Job.kind == KIND_LICENSE_CHECK,
                Job.state == "pending",
                Job.id != job.id,
                # A waiting coalesced job may have writers not yet committed: it runs itself.
                ~Job.dedup_key.endswith(COALESCED_SUFFIX),
            )
            .with_for_update(skip_locked=True)
        )
    )
    jobs = reconcile_org(session, job.org_id)
    if covered:
        now = utcnow()
        session.execute(
            update(Job)
            .where(any_of(Job.id, covered))
            .values(state="done", updated=now, finished_at=now, result={"covered_by": job.id})
        )
    return jobs


@shared_task(name="tasks.licenses.check", bind=True, ignore_result=True)
def check(self: Task, job_id: int) -> str:
    return run_job(self, job_id, handle, coalesced=True)


def reconcile_all() -> int:
    """Periodic reconciliation of every paid organization (catches anything missed)."""
    with db.session() as session:
        org_ids = list(session.scalars(select(Organization.id).where(Organization.plan == "paid")))
    for org_id in org_ids:
        with db.session() as session:
            jobs = reconcile_org(session, org_id)
            session.commit()
        publish(jobs)
    return len(org_ids)


@shared_task(name="tasks.licenses.sweep", ignore_result=True)
def sweep() -> int:
    return reconcile_all()
