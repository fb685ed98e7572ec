"""Organizations (plan, seats, SCIM switch) and their SCIM bearer tokens."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base, new_id, utcnow

PLANS = ("free", "paid")


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(20), default="free")
    seats: Mapped[int] = mapped_column(Integer, default=0)
    scim_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Per-organization override of the SCIM rate limit (requests per second); None = default.
    rate_limit: Mapped[int | None] = mapped_column(Integer)
    # An overflow episode is open while active users exceed the seats: one admin notice each.
    seat_overflow_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScimToken(Base):
    """A bearer token, stored only as a SHA-256 hash: it is 256 random bits, so no slow hash is
    needed, and lookup by hash means the secret itself is never compared byte by byte."""

    __tablename__ = "scim_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # A rotated token keeps working until revoked_at (the overlap window), then stops.
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
