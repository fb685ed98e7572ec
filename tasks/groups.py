"""Pending group members: link memberships that named a user before the user existed.

Job kind ``groups.resolve_members`` (``models.memberships.RESOLVE_KIND``), written by the
statement that created the user or changed its externalId (models/store.py) when a pending
member may name it; the Celery argument is the job id only. Run through ``tasks.outbox.run_job``:
the linking and "done" commit together, a duplicate delivery does nothing.
"""

from __future__ import annotations

import uuid

from celery import Task, shared_task
from sqlalchemy.orm import Session

from models.memberships import resolve_pending_members
from models.outbox import Job
from models.user import User
from tasks.outbox import run_job


def handle(session: Session, job: Job) -> list[int]:
    user = session.get(User, uuid.UUID(job.subject_id)) if job.subject_id else None
    linked = resolve_pending_members(session, user) if user is not None else 0
    job.result = {"linked": linked}
    return []


@shared_task(name="tasks.groups.resolve_members", bind=True, ignore_result=True)
def resolve_members(self: Task, job_id: int) -> str:
    return run_job(self, job_id, handle)
