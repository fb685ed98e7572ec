"""Groups (teams) and their memberships; members may name users that do not exist yet."""

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
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base, new_id, utcnow


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Unique as an identity; indexed only behind org_id (migration 0009).
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(Text)
    attrs: Mapped[dict] = mapped_column(JSONB, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_modified: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index(
            "uq_groups_org_display_name", "org_id", func.lower(text("display_name")), unique=True
        ),
        Index("ix_groups_org_seq", "org_id", "seq"),
        Index("ix_groups_org_external_id", "org_id", "external_id"),
    )


class Membership(Base):
    """One member of a group. ``member_value`` is the id as the IdP sent it (kept and returned
    exactly as sent); ``user_id`` is set once that user exists in the same organization, or
    ``member_group_id`` when the member is a group of the same organization (nested groups, as
    RFC 7644 §3.7's circular bulk example needs). Both null: a pending reference, resolved by
    ``models.memberships.resolve_pending_members`` when a matching user arrives."""

    __tablename__ = "memberships"

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    member_value: Mapped[str] = mapped_column(Text, primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    member_group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE")
    )
    # Insertion order: members are listed (and paged) in this order. Unique as an identity;
    # indexed only behind group_id (migration 0009).
    seq: Mapped[int] = mapped_column(BigInteger, Identity())

    __table_args__ = (
        Index("ix_memberships_user_id", "user_id"),
        Index("ix_memberships_group_seq", "group_id", "seq"),
        Index("ix_memberships_member_group_id", "member_group_id"),
        Index(
            "ix_memberships_pending",
            "org_id",
            "member_value",
            postgresql_where=text("user_id IS NULL"),
        ),
    )
