"""Group memberships as set operations in SQL, and the resolution of pending members.

A member list is never loaded whole: adds, removes and replaces are single statements over
arrays of values (``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, ``DELETE ... = ANY``), and
reads are pages in insertion order.

Which member values are accepted (the rule, applied by ``classify``):

1. a user id of this organization: a linked member (``user_id``);
2. a group id of this organization (not the group itself): a nested group member;
3. an id of a user or group of ANOTHER organization: refused (``ForeignMember`` -> 400
   invalidValue), with a detail that says only "not a member of this organization";
4. anything else: the ``externalId`` of exactly one user of this organization links to that
   user; otherwise the value is kept as a pending reference (IdPs send members before their
   users), resolved when a user with that id or externalId arrives (``resolve_pending_members``,
   run by the ``groups.resolve_members`` job).

Member values are stored as sent, except that a UUID is stored in canonical lower-case form so
that the same user sent in two spellings is one member.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session, aliased

from models.db import any_of, pg_array, rowcount, utcnow
from models.errors import StoreError
from models.group import Group, Membership
from models.user import User

RESOLVE_KIND = "groups.resolve_members"


class ForeignMember(StoreError):
    """A member value names a user or group of another organization, or the group itself."""


def normalise_value(value: str) -> str:
    """The stored form of a member value: a canonical UUID, or the value as sent."""
    return _normalised(value)[0]


def _normalised(value: str) -> tuple[str, uuid.UUID | None]:
    """The stored form of a member value and the UUID it is, if it is one (parsed once: a
    batch of 100 members parsed each twice spent a tenth of its PATCH on it)."""
    value = value.strip()
    if len(value) == 36:
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            return value, None
        return str(parsed), parsed
    return value, None


@dataclass
class Classified:
    """Member values sorted by what they name; each value appears once, in input order."""

    values: list[str] = field(default_factory=list)
    user_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    group_ids: dict[str, uuid.UUID] = field(default_factory=dict)

    @property
    def pending(self) -> list[str]:
        return [v for v in self.values if v not in self.user_ids and v not in self.group_ids]


def classify(
    session: Session, org_id: uuid.UUID, group_id: uuid.UUID | None, values: Iterable[str]
) -> Classified:
    """Apply the module's rule to ``values`` with a few set queries (not one per value)."""
    normalised = dict(_normalised(v) for v in values if v.strip())
    out = Classified(values=list(normalised))
    ids = {v: u for v, u in normalised.items() if u is not None}
    if ids:
        # ``= ANY(array)``: one parameter, one prepared statement whatever the batch size
        # (``IN`` expands to a parameter per value and a new statement text per size). The
        # organization is compared here, not in SQL: with ``org_id = ...`` in the query, stale
        # statistics (a bulk load) made PostgreSQL scan the organization instead of the key.
        # The arrays go as literals (``pg_array``): psycopg's adaptation of a list of 100 was
        # a tenth of a member PATCH.
        rows = session.execute(
            text("SELECT id, org_id FROM users WHERE id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": pg_array(ids.values())},
        )
        user_set = {row.id for row in rows if row.org_id == org_id}
        out.user_ids = {v: u for v, u in ids.items() if u in user_set}
        rest = {v: u for v, u in ids.items() if u not in user_set}
        if rest:
            group_set = set(
                session.scalars(
                    select(Group.id).where(
                        Group.org_id == org_id, any_of(Group.id, rest.values())
                    )
                )
            )
            if group_id is not None and group_id in group_set:
                raise ForeignMember("a group cannot be a member of itself")
            out.group_ids = {v: u for v, u in rest.items() if u in group_set}
            unknown = [u for u in rest.values() if u not in group_set]
            if unknown and _exists_elsewhere(session, org_id, unknown):
                raise ForeignMember("member value is not a user of this organization")
    candidates = [v for v in out.values if v not in out.user_ids and v not in out.group_ids]
    if candidates:
        out.user_ids.update(_by_external_id(session, org_id, candidates))
    return out


def _exists_elsewhere(session: Session, org_id: uuid.UUID, ids: list[uuid.UUID]) -> bool:
    in_users = exists().where(any_of(User.id, ids), User.org_id != org_id)
    in_groups = exists().where(any_of(Group.id, ids), Group.org_id != org_id)
    return bool(session.scalar(select(in_users | in_groups)))


def _by_external_id(session: Session, org_id: uuid.UUID, values: list[str]) -> dict[str, uuid.UUID]:
    """``externalId -> user id`` for values that are the externalId of exactly one user."""
    rows = session.execute(
        text(
            "SELECT external_id, (array_agg(id))[1] AS id FROM users "
            "WHERE org_id = :org AND external_id = ANY(CAST(:values AS text[])) "
            "GROUP BY external_id HAVING count(*) = 1"
        ),
        {"org": org_id, "values": pg_array(values)},
    )
    return {r.external_id: r.id for r in rows}


# ------------------------------------------------------------------------ set operations


_INSERT = text(
    """
    INSERT INTO memberships (group_id, member_value, org_id, user_id, member_group_id)
    SELECT :group_id, t.value, :org_id, t.user_id, t.member_group_id
    FROM unnest(CAST(:values AS text[]), CAST(:user_ids AS uuid[]),
                CAST(:group_ids AS uuid[]))
         WITH ORDINALITY AS t(value, user_id, member_group_id, n)
    ORDER BY t.n
    ON CONFLICT (group_id, member_value) DO NOTHING
    """
)


def add_members(session: Session, group: Group, values: Iterable[str]) -> int:
    """Add members (existing ones are left alone); return how many rows were inserted."""
    c = classify(session, group.org_id, group.id, values)
    if not c.values:
        return 0
    user_ids = [c.user_ids.get(v) for v in c.values]
    group_ids = [c.group_ids.get(v) for v in c.values]
    result = session.execute(
        _INSERT,
        {
            "group_id": group.id,
            "org_id": group.org_id,
            "values": pg_array(c.values),
            "user_ids": pg_array(user_ids),
            "group_ids": pg_array(group_ids),
        },
    )
    return rowcount(result)


def remove_members(session: Session, group: Group, values: Iterable[str]) -> int:
    """Remove the members named by ``values`` (as sent, or by the linked user's id); others
    stay. Removing a non-member is not an error. Returns how many rows were deleted."""
    normalised = dict(_normalised(v) for v in values if v.strip())
    if not normalised:
        return 0
    ids = [u for u in normalised.values() if u is not None]
    result = session.execute(
        text(
            "DELETE FROM memberships WHERE group_id = :group_id AND ("
            "member_value = ANY(CAST(:values AS text[])) OR user_id = ANY(CAST(:ids AS uuid[])))"
        ),
        {"group_id": group.id, "values": pg_array(normalised.keys()),
         "ids": pg_array(ids)},
    )
    return rowcount(result)


def replace_members(session: Session, group: Group, values: Iterable[str]) -> int:
    """Make the member list exactly ``values``; return rows deleted plus rows inserted."""
    wanted = list(dict.fromkeys(normalise_value(v) for v in values if v.strip()))
    # Classify first: a refused value must fail the write before anything is deleted.
    classify(session, group.org_id, group.id, wanted)
    # NOT IN (subquery) runs as a hashed anti-join: linear, not members x values.
    deleted = rowcount(session.execute(
        text(
            "DELETE FROM memberships WHERE group_id = :group_id AND member_value NOT IN "
            "(SELECT unnest(CAST(:values AS text[])))"
        ),
        {"group_id": group.id, "values": pg_array(wanted)},
    ))
    return deleted + add_members(session, group, wanted)


# --------------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class Member:
    group_id: uuid.UUID
    value: str
    user_id: uuid.UUID | None
    member_group_id: uuid.UUID | None
    display: str | None


_PAGE = text(
    """
    SELECT g.gid AS group_id, m.member_value, m.user_id, m.member_group_id, m.display
    FROM unnest(CAST(:group_ids AS uuid[])) AS g(gid)
    CROSS JOIN LATERAL (
        SELECT mm.member_value, mm.user_id, mm.member_group_id, mm.seq,
               COALESCE(u.display_name, u.user_name, mg.display_name) AS display
        FROM memberships mm
        LEFT JOIN users u ON u.id = mm.user_id
        LEFT JOIN groups mg ON mg.id = mm.member_group_id
        WHERE mm.group_id = g.gid
        ORDER BY mm.seq
        LIMIT :limit
    ) m
    ORDER BY g.gid, m.seq
    """
)


def members_of(
    session: Session, group_ids: Sequence[uuid.UUID], limit: int
) -> dict[uuid.UUID, list[Member]]:
    """Up to ``limit`` members of each group, in insertion order, in one query that reads
    only those rows (index ``(group_id, seq)``), streamed from the server in chunks."""
    out: dict[uuid.UUID, list[Member]] = {gid: [] for gid in group_ids}
    if not group_ids or limit <= 0:
        return out
    result = session.execute(
        _PAGE,
        {"group_ids": [str(g) for g in group_ids], "limit": limit},
        execution_options={"yield_per": 1000},
    )
    for row in result:
        out[row.group_id].append(_member(row))
    return out


def _member(row: Row[Any]) -> Member:
    return Member(row.group_id, row.member_value, row.user_id, row.member_group_id, row.display)


def iter_members(session: Session, group_id: uuid.UUID, chunk: int = 1000) -> Iterator[Member]:
    """Every member of a group, a keyset page at a time (never the whole list in memory)."""
    after = 0
    while True:
        rows = session.execute(
            text(
                "SELECT m.group_id, m.member_value, m.user_id, m.member_group_id, m.seq, "
                "COALESCE(u.display_name, u.user_name, mg.display_name) AS display "
                "FROM memberships m LEFT JOIN users u ON u.id = m.user_id "
                "LEFT JOIN groups mg ON mg.id = m.member_group_id "
                "WHERE m.group_id = :g AND m.seq > :after ORDER BY m.seq LIMIT :n"
            ),
            {"g": group_id, "after": after, "n": chunk},
        ).all()
        if not rows:
            return
        for row in rows:
            yield _member(row)
        after = rows[-1].seq


@functools.cache
def groups_column() -> Any:
    """A correlated subquery giving each ``users`` row its direct groups as a JSON array of
    ``[group id, displayName]``, NULL when it has none (nothing for the driver to decode), so
    a page of users and their groups is one query. Built once: SQL constructs are immutable,
    and building it took a tenth of a lookup."""
    return (
        select(
            func.jsonb_agg(
                aggregate_order_by(func.jsonb_build_array(Group.id, Group.display_name),
                                   Group.seq)
            )
        )
        .select_from(Membership)
        .join(Group, Group.id == Membership.group_id)
        .where(Membership.user_id == User.id)
        .correlate(User)
        .scalar_subquery()
    )


@functools.cache
def manager_column() -> Any:
    """A correlated subquery giving each ``users`` row its resolved manager's display name
    (displayName, else userName), so a page renders ``manager.displayName`` without a second
    query. ``manager_id`` is a foreign key: when it is set, the manager exists."""
    manager = aliased(User, name="manager")
    return (
        select(func.coalesce(manager.display_name, manager.user_name))
        .where(manager.id == User.manager_id)
        .correlate(User)
        .scalar_subquery()
    )


# ------------------------------------------------------------------ pending resolution


def _candidates(session: Session, user: User) -> list[str]:
    """The member values that name ``user``: its id, and its externalId when no other user
    of the organization has the same one (an ambiguous externalId links no one)."""
    values = [str(user.id)]
    if user.external_id:
        others = session.scalar(
            select(exists().where(
                User.org_id == user.org_id,
                User.external_id == user.external_id,
                User.id != user.id,
            ))
        )
        if not others:
            values.append(user.external_id)
    return values


# Whether a pending member value of the organization names the users row being written (its
# id or externalId), as SQL over that row: a create's or an update's statement writes the
# resolve job when it holds (models/store.py). An externalId two users share passes here; the
# job's handler links only unambiguous values (``_candidates``).
PENDING_NAMING_NEW_ROW = (
    "EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = users.org_id"
    " AND m.user_id IS NULL AND m.member_group_id IS NULL"
    " AND m.member_value IN (users.id::text, users.external_id))"
)


def resolve_pending_members(session: Session, user: User) -> int:
    """Link the pending memberships that name ``user``; return how many were linked.

    Idempotent (only ``user_id IS NULL`` rows are touched). The groups whose members changed
    get a new version: their representation (member ``$ref``/``display``) changed.
    """
    values = _candidates(session, user)
    group_ids = list(
        session.scalars(
            update(Membership)
            .where(
                Membership.org_id == user.org_id,
                Membership.user_id.is_(None),
                Membership.member_group_id.is_(None),
                Membership.member_value.in_(values),
            )
            .values(user_id=user.id)
            .returning(Membership.group_id)
            .execution_options(synchronize_session=False)
        )
    )
    if group_ids:
        session.execute(
            update(Group)
            .where(Group.id.in_(set(group_ids)))
            .values(version=Group.version + 1, last_modified=utcnow())
            .execution_options(synchronize_session=False)
        )
    return len(group_ids)


__all__ = [
    "PENDING_NAMING_NEW_ROW",
    "RESOLVE_KIND",
    "Classified",
    "ForeignMember",
    "Member",
    "add_members",
    "classify",
    "groups_column",
    "iter_members",
    "manager_column",
    "members_of",
    "normalise_value",
    "remove_members",
    "replace_members",
    "resolve_pending_members",
]
