"""Manager resolution: ``tasks.managers.resolve(job_id)`` and the periodic sweep.

A job's subject is a user that was created, changed its manager reference, or changed an
id-like value (userName, externalId, employeeNumber). The task resolves the subject's own
reference, every pending reference that now names the subject (whichever of the two users
arrived first), and — when the subject's id-like values changed — its reports whose reference
no longer names it. Constant indexed queries per user; see models/managers.py.
"""

from __future__ import annotations

import logging
import uuid

from celery import Task, shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import managers as m
from models.outbox import Job
from models.user import User
from tasks import db
from tasks.outbox import run_job

log = logging.getLogger("workteam.managers")

SWEEP_BATCH = 1000


def resolve_user(session: Session, user: User) -> bool:
    """Resolve one user's reference now (no commit); used by the re-sync too."""
    m.lock_org(session, user.org_id)
    locked = m.lock_users(session, [user.id])
    return bool(locked) and m.resolve(session, locked[0])


def handle(session: Session, job: Job) -> list[int]:
    subject_id = uuid.UUID(job.payload["user_id"])
    m.lock_org(session, job.org_id)
    found = m.lock_users(session, [subject_id])
    if not found:
        return []  # deleted since: its reports were released by the delete itself
    subject = found[0]
    changed = m.resolve(session, subject) if subject.manager_state != "resolved" else False
    waiting = [i for i in m.pending_naming(session, subject) if i != subject.id]
    if job.payload.get("ids_changed"):
        # Reports linked through an old value: re-resolve (they stay if still named).
        waiting += m.reports_of(session, subject.id)
    for user in m.lock_users(session, waiting):
        changed = m.resolve(session, user) or changed
    job.result = {"rechecked": len(waiting) + 1}
    return []


@shared_task(name="tasks.managers.resolve", bind=True, ignore_result=True)
def resolve(self: Task, job_id: int) -> str:
    return run_job(self, job_id, handle)


def sweep_pending(limit: int = SWEEP_BATCH) -> int:
    """Catch what events missed: re-resolve pending references (and cycle refusals, which a
    later change elsewhere may have lifted), a batch per run; commit per organization."""
    with db.session() as session:
        rows = session.execute(
            select(User.org_id, User.id)
            .where(
                (User.manager_state == "pending")
                | ((User.manager_state == "invalid") & (User.manager_reason == m.CYCLE))
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
