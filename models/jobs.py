"""Writing outbox rows. Called inside the transaction that makes the change; the web layer
publishes the returned ids after commit (tasks/outbox.py), and a beat sweep catches the rest."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models.outbox import Job

# session.info key: {job id: kind} of the jobs this session wrote, so that publishing after the
# commit needs no second read of the database (which may be gone by then).
ENQUEUED_KINDS = "workteam.enqueued_kinds"

# Job kinds written by the data layer; tasks/outbox.py maps each to its Celery task.
KIND_MANAGERS = "managers.resolve"  # subject: a user whose reference or id-like values changed
KIND_LICENSE_CHECK = "licenses.check"  # subject: the user whose event may change seat use
KIND_MAIL = "mail.send"  # subject: a mail event key; one job per (event, recipient)
KIND_NOTIFY_DEACTIVATED = "mail.deactivated"  # fans out to the manager or the org admins


def enqueue(
    session: Session,
    org_id: uuid.UUID,
    kind: str,
    dedup_key: str,
    *,
    subject_id: str | None = None,
    payload: dict | None = None,
) -> int | None:
    """Insert a pending job unless one with ``dedup_key`` exists; return the new id or None."""
    stmt = (
        insert(Job)
        .values(
            org_id=org_id,
            kind=kind,
            dedup_key=dedup_key,
            subject_id=subject_id,
            payload=payload or {},
            state="pending",
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(Job.id)
    )
    job_id = session.scalar(stmt)
    if job_id is not None:
        session.info.setdefault(ENQUEUED_KINDS, {})[job_id] = kind
    return job_id


def pending_ids(session: Session, limit: int = 500) -> list[int]:
    return list(
        session.scalars(
            select(Job.id).where(Job.state == "pending").order_by(Job.created).limit(limit)
        )
    )
