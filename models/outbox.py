"""The transactional outbox: follow-up jobs written in the request's transaction, and sent mail."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    and_,
    delete,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.db import Base, rowcount, utcnow

JOB_STATES = ("pending", "running", "done", "failed", "cancelled")
# A literal, so that prepared (generic) plans can use the partial index ix_jobs_pending.
JOB_PENDING = text("jobs.state = 'pending'")
# Likewise, for ix_jobs_running_or_failed.
JOB_RUNNING = text("jobs.state = 'running'")
JOB_FAILED = text("jobs.state = 'failed'")


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    # (kind, subject, version) in one string: a second job for the same event is not written.
    dedup_key: Mapped[str] = mapped_column(Text, unique=True)
    subject_id: Mapped[str | None] = mapped_column(Text)
    # Ids and flags only: never personal data or secrets (Celery args and Flower show ids only).
    payload: Mapped[dict] = mapped_column(JSONB, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict | None] = mapped_column(JSONB)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_jobs_pending", "state", "created", postgresql_where=text("state = 'pending'")),
        # id last: a mail batch's next pick (ORDER BY id LIMIT 1) reads the rows in order.
        Index("ix_jobs_org_kind_state_id", "org_id", "kind", "state", "id"),
        # Done jobs stay, so "which are running or failed" must not read them (migration 0012).
        Index(
            "ix_jobs_running_or_failed",
            "org_id",
            "state",
            "updated",
            postgresql_include=["kind"],
            postgresql_where=text("state IN ('running', 'failed')"),
        ),
    )


class SentMail(Base):
    """One row per mail event: the unique event key makes sending exactly-once."""

    __tablename__ = "sent_mail"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(Text, unique=True)
    template: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|dropped
    reason: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


# ------------------------------------------------------------------------------- retention
# Done jobs and mail records are the ledger that makes follow-ups exactly-once, but only for
# as long as a duplicate can come: a retried request, a redelivered message (minutes, hours).
# Past the retention (tasks/outbox.py ``prune``) they go, except what is still needed later:
# jobs not finished (pending, running, failed: an admin retries those), re-syncs (the admin's
# history), mail records still pending, and welcome records, whose event key is what makes a
# welcome once per user, ever (a user licensed again after its welcome job went gets a new
# job, which finds the record sent and sends nothing). A user's welcome record goes with the
# user instead (``forget_welcome``).


def welcome_event(user_id: uuid.UUID | str) -> str:
    """The event key of a user's welcome mail: one per user, ever."""
    return f"welcome:{user_id}"


def forget_welcome(session: Session, user_id: uuid.UUID) -> None:
    """Delete the welcome record of a user being deleted (call it after deleting the user's
    row): it holds the user's email address, and all it does is stop a second welcome to an
    id that never comes back (ids are the server's). A welcome being sent at that moment has
    a record this transaction cannot see yet: its sender deletes it when it finishes
    (tasks/notifications.py ``_FINISH``), after waiting for this transaction on the user's row;
    a sender that read the user first holds that row, so this one waits for it and then finds
    its record here."""
    session.execute(delete(SentMail).where(SentMail.event_key == welcome_event(user_id)))


def prunable_jobs(cutoff: dt.datetime) -> ColumnElement[bool]:
    # "resync": models.resync.KIND (which imports this module).
    return and_(Job.state.in_(("done", "cancelled")), Job.kind != "resync",
                Job.updated < cutoff)


def prunable_mail(cutoff: dt.datetime) -> ColumnElement[bool]:
    return and_(SentMail.state != "pending", SentMail.template != "welcome",
                SentMail.created < cutoff)


def prune_from(
    session: Session, model: type[Job] | type[SentMail], start: int | None,
    cutoff: dt.datetime, *, batch: int = 10_000,
) -> tuple[int, int | None]:
    """Delete the prunable rows of ``model`` (``Job`` or ``SentMail``) among the ``batch``
    ids from ``start`` (None: the lowest); return how many went and where the next call
    starts (None: done). Rows are appended in time order, so the walk goes up the primary key
    from the oldest row and stops at the first row created after ``cutoff``, never scanning
    the table for old rows. It steps over the kept rows each time: few jobs, but a welcome
    record per user (a run that deletes nothing took 0.48 s with 500,000 of them,
    bench/bench_outbox_prune.py)."""
    if start is None:
        start = session.scalar(select(model.id).order_by(model.id).limit(1))
        if start is None:
            return 0, None
    prunable = prunable_jobs(cutoff) if model is Job else prunable_mail(cutoff)
    result = session.execute(
        delete(model).where(model.id >= start, model.id < start + batch, prunable)
    )
    following = session.execute(
        select(model.id, model.created)
        .where(model.id >= start + batch)
        .order_by(model.id)
        .limit(1)
    ).first()
    if following is None or following.created >= cutoff:
        return rowcount(result), None
    return rowcount(result), following.id
