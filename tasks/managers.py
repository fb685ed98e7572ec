"""Manager resolution: ``tasks.managers.resolve_org(job_id)``, ``tasks.managers.resolve(job_id)``
and the periodic sweep.

Creates and reference changes enqueue one coalesced job per organization (models/jobs.py):
``resolve_org`` resolves every pending reference of the organization in a few bulk statements,
whichever of the two users arrived first. A user whose id-like value (userName, externalId,
employeeNumber) changed gets a job of its own: ``resolve`` rechecks its reports whose reference
no longer names it, and the pending references that now do. See models/managers.py.
"""

from __future__ import annotations

import logging
import uuid

from celery import Task, shared_task
from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import managers as m
from models import planner
from models.db import utcnow
from models.jobs import KIND_MANAGERS, KIND_MANAGERS_ORG, enqueue_coalesced
from models.outbox import JOB_PENDING, Job
from models.user import User
from tasks import db
from tasks.outbox import run_job

log = logging.getLogger("workteam.managers")

SWEEP_BATCH = 1000
BATCH = 200  # manager jobs of one organization done in one transaction


def resolve_subject(session: Session, subject_id: uuid.UUID, ids_changed: bool) -> int:
    """The work for one subject (the caller holds ``lock_org``); returns users rechecked."""
    found = m.lock_users(session, [subject_id])
    if not found:
        return 0  # deleted since: its reports were released by the delete itself
    subject = found[0]
    if subject.manager_state != "resolved":
        m.resolve(session, subject)
    waiting = [i for i in m.pending_naming(session, subject) if i != subject.id]
    if ids_changed:
        # Reports linked through an old value: re-resolve (they stay if still named).
        waiting += m.reports_of(session, subject.id)
    for user in m.lock_users(session, waiting):
        m.resolve(session, user)
    return 1 + len(waiting)


def handle(session: Session, job: Job) -> list[int]:
    """This job and, in the same transaction, up to BATCH-1 other pending manager jobs of the
    organization (their messages then find them done): under a burst of creates one task does
    the work of many, and the per-message cost is one row lookup."""
    m.lock_org(session, job.org_id)
    others = list(
        session.scalars(
            select(Job)
            .where(
                Job.org_id == job.org_id,
                Job.kind == KIND_MANAGERS,
                JOB_PENDING,
                Job.id != job.id,
            )
            .order_by(Job.id)
            .limit(BATCH - 1)
            .with_for_update(skip_locked=True)
        )
    )
    rechecked = 0
    now = utcnow()
    for each in [job, *others]:
        try:
            subject_id = uuid.UUID(str(each.payload.get("user_id")))
        except ValueError:
            if each is job:
                raise  # bad data: this job fails; a batch never fails for another's payload
            continue
        rechecked += resolve_subject(session, subject_id, bool(each.payload.get("ids_changed")))
        if each is not job:
            each.state, each.updated, each.finished_at = "done", now, now
            each.attempts += 1
            each.result = {"covered_by": job.id}
    job.result = {"jobs": 1 + len(others), "rechecked": rechecked}
    return []


@shared_task(name="tasks.managers.resolve", bind=True, ignore_result=True)
def resolve(self: Task, job_id: int) -> str:
    return run_job(self, job_id, handle)


def handle_org(session: Session, job: Job) -> list[int]:
    """Every pending reference of the job's organization, in bulk (models.managers)."""
    m.lock_org(session, job.org_id)
    done = m.resolve_pending(session, job.org_id)
    job.result = {"changed": done.changed, "skipped": done.skipped}
    if done.skipped:
        # Locked rows were left alone: the next pass (a new coalesced job) takes them.
        return enqueue_coalesced(session, job.org_id, KIND_MANAGERS_ORG)
    return []


@shared_task(name="tasks.managers.resolve_org", bind=True, ignore_result=True)
def resolve_org(self: Task, job_id: int) -> str:
    outcome = run_job(self, job_id, handle_org, coalesced=True)
    # Every create leads here: the place to notice that the users table has grown.
    planner.refresh_young_statistics(current_app.extensions["db.autocommit_engine"])
    return outcome


def sweep_pending(limit: int = SWEEP_BATCH) -> int:
    """Catch what events missed: re-resolve pending references (and cycle refusals, which a
    later change elsewhere may have lifted), a batch per run; commit per organization."""
    with db.session() as session:
        rows = session.execute(
            select(User.org_id, User.id)
            .where(
                or_(
                    m.IS_PENDING,
                    # A literal state, which ix_users_manager_problem serves.
                    m.IS_INVALID & (User.manager_reason == m.CYCLE),
                )
            )
            .order_by(User.org_id, User.last_modified)
            .limit(limit)
        ).all()
        by_org: dict[uuid.UUID, list[uuid.UUID]] = {}
        for row in rows:
            by_org.setdefault(row.org_id, []).append(row.id)
        changed = 0
        for org_id, ids in by_org.items():
            m.lock_org(session, org_id)
            for user in m.lock_users(session, ids):
                changed += m.resolve(session, user)
            session.commit()
    if changed:
        log.info("manager sweep resolved or re-marked %d reference(s)", changed)
    return changed


@shared_task(name="tasks.managers.sweep", ignore_result=True)
def sweep() -> int:
    return sweep_pending()
