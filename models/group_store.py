"""Create, get, update and delete groups, with version checks; members via set operations.

Like ``models.store`` for users: derives the indexed columns from the stored attributes, bumps
``version`` only when something really changed (attributes or membership rows), never commits.
Writers lock the group row (``get_group(..., for_update=True)``), so concurrent membership
changes to one group are serialised and none is lost; different groups never wait on each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import memberships
from models.db import utcnow
from models.errors import DuplicateError, NotFoundError, VersionConflict
from models.group import Group


def group_columns(attrs: dict) -> dict[str, Any]:
    return {"display_name": attrs["displayName"], "external_id": attrs.get("externalId")}


def _is_unique_violation(exc: IntegrityError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "23505"


def _duplicate(attrs: dict) -> DuplicateError:
    return DuplicateError(f"displayName '{attrs['displayName']}' is already taken")


@dataclass
class GroupWrite:
    group: Group
    changed: bool
    job_ids: list[int] = field(default_factory=list)


def create_group(
    session: Session, org_id: uuid.UUID, attrs: dict, members: Sequence[str] = ()
) -> GroupWrite:
    group = Group(org_id=org_id, attrs=attrs, **group_columns(attrs))
    session.add(group)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        if _is_unique_violation(exc):
            raise _duplicate(attrs) from None
        raise
    if members:
        memberships.add_members(session, group, members)
    return GroupWrite(group, True)


def get_group(
    session: Session, org_id: uuid.UUID, group_id: str | uuid.UUID, *, for_update: bool = False
) -> Group:
    try:
        gid = group_id if isinstance(group_id, uuid.UUID) else uuid.UUID(str(group_id))
    except ValueError:
        raise NotFoundError(f"Group {group_id} not found") from None
    stmt = select(Group).where(Group.id == gid, Group.org_id == org_id)
    if for_update:
        # FOR NO KEY UPDATE: serialises writers of this group, yet does not block the KEY SHARE
        # lock another group's membership insert takes when it names this group as a member
        # (two groups adding each other would otherwise deadlock).
        stmt = stmt.with_for_update(key_share=True)
    group = session.scalar(stmt.execution_options(populate_existing=True))
    if group is None:
        raise NotFoundError(f"Group {group_id} not found")
    return group


def update_group(
    session: Session,
    group: Group,
    attrs: dict | None = None,
    *,
    members_added: Sequence[str] = (),
    members_removed: Sequence[str] = (),
    members_replaced: Sequence[str] | None = None,
    expected_version: int | None = None,
) -> GroupWrite:
    """Write new attributes (None: unchanged) and member changes to a group read with
    ``for_update=True``. Removes are applied before adds; ``members_replaced`` (not None)
    replaces the whole list. A write that changes nothing keeps version and lastModified."""
    if expected_version is not None and expected_version != group.version:
        raise VersionConflict(f"Group {group.id} is at version {group.version}")
    changed = False
    if attrs is not None and attrs != group.attrs:
        group.attrs = attrs
        for name, value in group_columns(attrs).items():
            setattr(group, name, value)
        changed = True
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError as exc:
            if _is_unique_violation(exc):
                raise _duplicate(attrs) from None
            raise
    if members_replaced is not None:
        changed |= memberships.replace_members(session, group, members_replaced) > 0
    else:
        if members_removed:
            changed |= memberships.remove_members(session, group, members_removed) > 0
        if members_added:
            changed |= memberships.add_members(session, group, members_added) > 0
    if changed:
        group.version = group.version + 1
        group.last_modified = utcnow()
        session.flush()
    return GroupWrite(group, changed)


def delete_group(session: Session, group: Group) -> None:
    session.delete(group)  # memberships go with it (ON DELETE CASCADE)
    session.flush()


__all__ = ["GroupWrite", "create_group", "delete_group", "get_group", "update_group"]
