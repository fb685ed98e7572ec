"""The transactional outbox: follow-up jobs written in the request's transaction, and sent mail."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base, utcnow

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
