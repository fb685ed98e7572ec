"""User: the SCIM resource as sent (JSONB) plus real, indexed columns for what is searched.

``attrs`` holds the canonical resource exactly as the IdP sent it, without id, meta, password
and server-computed parts; the columns are derived from it by ``store.user_columns`` (the only
writer), so the two cannot drift.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base, new_id, utcnow

MANAGER_STATES = ("none", "pending", "resolved", "invalid")
LICENSE_STATES = ("none", "licensed", "unlicensed")


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Insertion order: the stable sort for index pagination and the key for cursors.
    # Unique as an identity; indexed only behind org_id (migration 0009).
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_name: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    display_name: Mapped[str | None] = mapped_column(Text)
    given_name: Mapped[str | None] = mapped_column(Text)
    family_name: Mapped[str | None] = mapped_column(Text)
    nick_name: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    primary_email: Mapped[str | None] = mapped_column(Text)
    # Every email value, lower-cased, for indexed `emails.value eq` lookups.
    emails_lower: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    employee_number: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(Text)
    manager_value: Mapped[str | None] = mapped_column(Text)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    manager_state: Mapped[str] = mapped_column(String(16), default="none")
    manager_reason: Mapped[str | None] = mapped_column(Text)
    license_state: Mapped[str] = mapped_column(String(16), default="none")
    licensed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    password_hash: Mapped[str | None] = mapped_column(Text)
    attrs: Mapped[dict] = mapped_column(JSONB, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_modified: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        # text_pattern_ops: the index serves `userName sw` as a range too (migration 0014).
        Index(
            "uq_users_org_user_name",
            "org_id",
            func.lower(text("user_name")).label("lower_user_name"),
            unique=True,
            postgresql_ops={"lower_user_name": "text_pattern_ops"},
        ),
        # INCLUDE id: an import's OFFSET walk is index-only (migration 0006).
        Index("ix_users_org_seq_id", "org_id", "seq", postgresql_include=["id"]),
        Index("ix_users_org_external_id", "org_id", "external_id"),
        Index("ix_users_org_primary_email", "org_id", func.lower(text("primary_email"))),
        Index("ix_users_emails_lower", "emails_lower", postgresql_using="gin"),
        Index("ix_users_org_employee_number", "org_id", "employee_number"),
        Index("ix_users_org_display_name", "org_id", func.lower(text("display_name"))),
        Index("ix_users_org_family_name", "org_id", func.lower(text("family_name"))),
        Index("ix_users_org_department", "org_id", func.lower(text("department"))),
        Index("ix_users_manager_id", "manager_id"),
        Index(
            "ix_users_pending_manager",
            "org_id",
            "manager_value",
            postgresql_where=text("manager_state = 'pending'"),
        ),
        Index(
            "ix_users_org_license",
            "org_id",
            "license_state",
            "seq",
        ),
        # A license check finds what changes, not every user of the organization (migration
        # 0007): deactivated users still holding a license, active users without one.
        Index(
            "ix_users_license_to_release",
            "org_id",
            postgresql_where=text("active IS FALSE AND license_state <> 'none'"),
        ),
        Index(
            "ix_users_license_wanted",
            "org_id",
            "seq",
            postgresql_where=text("active IS TRUE AND license_state <> 'licensed'"),
        ),
        # The admin Users tab and /metrics count manager problems and inactive users: these
        # hold only those users, so the counts cost what they count (migration 0011).
        Index(
            "ix_users_manager_problem",
            "org_id",
            "manager_state",
            "seq",
            postgresql_where=text("manager_state IN ('pending', 'invalid')"),
        ),
        Index("ix_users_inactive", "org_id", postgresql_where=text("active IS FALSE")),
    )
