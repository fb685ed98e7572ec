"""Manager references: link a user's enterprise ``manager.value`` to a user of the same
organization. The value is kept exactly as the IdP sent it; the link is ``manager_id`` with
``manager_state`` none | pending | resolved | invalid and a reason for the last two.

``value`` names the manager by, in this order of precedence: Workteam id (what the user guide
asks for), externalId, userName (case-insensitive, like userName everywhere), employeeNumber.
Every function here does a constant number of indexed queries; none commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Index, func, literal, or_, select, text, union_all, update
from sqlalchemy.orm import Session

from models.db import any_of, rowcount
from models.user import User

# Reverse lookup "which pending references name this user?", case-insensitively (userName).
PENDING_LOWER_INDEX = Index(
    "ix_users_pending_manager_lower",
    User.org_id,
    func.lower(User.manager_value),
    postgresql_where=text("manager_state = 'pending'"),
)

NOT_FOUND = "no user of the organization has this id, externalId, userName or employeeNumber yet"
SELF = "self-reference: the user is named as its own manager"
CYCLE = "cycle: the named manager is managed, directly or not, by this user"
DELETED = "the manager was deleted"
MAX_DEPTH = 10_000  # bound on the walk up the chain (the data never has cycles; be safe anyway)

_LOCK_NAMESPACE = 0x6D616E61  # "mana": keeps these advisory locks apart from any other use


def lock_org(session: Session, org_id: uuid.UUID) -> None:
    """Serialize reference changes within one organization until the transaction ends: two
    workers linking A->B and B->A at once would each miss the other's uncommitted edge."""
    key = int.from_bytes(org_id.bytes[:8], "big", signed=True) ^ _LOCK_NAMESPACE
    session.execute(select(func.pg_advisory_xact_lock(key)))


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def find_manager(
    session: Session, org_id: uuid.UUID, value: str
) -> tuple[uuid.UUID | None, str | None]:
    """(the manager's id, None), or (None, why not): one query over four indexes."""
    as_id = _as_uuid(value)
    lowered = value.lower()
    conditions = [
        User.external_id == value,
        func.lower(User.user_name) == lowered,
        User.employee_number == value,
    ]
    if as_id is not None:
        conditions.insert(0, User.id == as_id)
    rows = session.execute(
        select(User.id, User.external_id, User.user_name, User.employee_number)
        .where(User.org_id == org_id, or_(*conditions))
        .limit(50)
    ).all()
    by_key: dict[str, dict[str, list[uuid.UUID]]] = {
        "id": {}, "externalId": {}, "userName": {}, "employeeNumber": {},
    }
    for r in rows:
        for name, key in (("id", str(r.id)), ("externalId", r.external_id),
                          ("userName", (r.user_name or "").lower() or None),
                          ("employeeNumber", r.employee_number)):
            if key is not None:
                by_key[name].setdefault(key, []).append(r.id)
    return _pick(value, by_key)


def manages(session: Session, ancestor_id: uuid.UUID, manager_id: uuid.UUID) -> bool:
    """Is ``ancestor_id`` in the resolved chain above ``manager_id``? One recursive query, each
    step a primary-key lookup."""
    chain = (
        select(User.manager_id.label("id"), literal(1).label("depth"))
        .where(User.id == manager_id, User.manager_state == "resolved")
        .cte("chain", recursive=True)
    )
    step = select(User.manager_id, chain.c.depth + 1).where(
        User.id == chain.c.id, User.manager_state == "resolved", chain.c.depth < MAX_DEPTH
    )
    chain = chain.union_all(step)
    return session.scalar(select(chain.c.id).where(chain.c.id == ancestor_id).limit(1)) is not None


def resolve(session: Session, user: User) -> bool:
    """Resolve ``user``'s reference (the caller holds ``lock_org`` and the user's row lock);
    return whether anything changed."""
    if not user.manager_value:
        state, manager_id, reason = "none", None, None
    else:
        manager_id, reason = find_manager(session, user.org_id, user.manager_value)
        state = "pending"
        if manager_id == user.id:
            state, manager_id, reason = "invalid", None, SELF
        elif manager_id is not None and manages(session, user.id, manager_id):
            state, manager_id, reason = "invalid", None, CYCLE
        elif manager_id is not None:
            state = "resolved"
    if (user.manager_state, user.manager_id, user.manager_reason) == (state, manager_id, reason):
        return False
    user.manager_state, user.manager_id, user.manager_reason = state, manager_id, reason
    return True


def lock_users(session: Session, ids: Iterable[uuid.UUID]) -> list[User]:
    """The users, freshly read and row-locked, in id order (a stable lock order)."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    return list(
        session.scalars(
            select(User)
            .where(any_of(User.id, wanted))
            .order_by(User.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


# The state as an SQL literal, not a bound parameter: psycopg prepares repeated statements, and
# PostgreSQL's generic plan for ``manager_state = $2`` cannot use the partial index (it cannot
# prove $2 = 'pending'), so it would scan the organization for every user.
IS_PENDING = text("users.manager_state = 'pending'")
IS_INVALID = text("users.manager_state = 'invalid'")
# Pending or invalid: what an admin has to look at (``ix_users_manager_problem``).
HAS_PROBLEM = text("users.manager_state IN ('pending', 'invalid')")


def pending_naming(session: Session, user: User) -> list[uuid.UUID]:
    """Pending references whose value could name ``user`` (by any of its four keys)."""
    values = {
        v.lower()
        for v in (str(user.id), user.external_id, user.user_name, user.employee_number)
        if v
    }
    # One equality lookup per value, not ``IN (...)``: with IN, PostgreSQL may use only the
    # index's org_id column and filter every pending reference of the organization.
    lookups = [
        select(User.id).where(
            User.org_id == user.org_id, IS_PENDING, func.lower(User.manager_value) == value
        )
        for value in sorted(values)
    ]
    return list(dict.fromkeys(session.scalars(union_all(*lookups))))


# ------------------------------------------------------------------ all pending, in bulk


def _pick(
    value: str, by_key: dict[str, dict[str, list[uuid.UUID]]]
) -> tuple[uuid.UUID | None, str | None]:
    """The precedence and ambiguity rule (id, externalId, userName, employeeNumber; two users
    at the first level that matches is ambiguous), over matches prefetched by key."""
    as_id = _as_uuid(value)
    candidates = (
        ("id", by_key["id"].get(str(as_id)) if as_id is not None else None),
        ("externalId", by_key["externalId"].get(value)),
        ("userName", by_key["userName"].get(value.lower())),
        ("employeeNumber", by_key["employeeNumber"].get(value)),
    )
    for name, hits in candidates:
        if hits and len(hits) == 1:
            return hits[0], None
        if hits:
            return None, f"ambiguous: {len(hits)} users have this {name}"
    return None, NOT_FOUND


_MATCHES = {
    "id": "SELECT id, id::text AS k FROM users WHERE org_id = :org AND id = ANY(:v)",
    "externalId": "SELECT id, external_id AS k FROM users "
    "WHERE org_id = :org AND external_id = ANY(:v)",
    "userName": "SELECT id, lower(user_name) AS k FROM users "
    "WHERE org_id = :org AND lower(user_name) = ANY(:v)",
    "employeeNumber": "SELECT id, employee_number AS k FROM users "
    "WHERE org_id = :org AND employee_number = ANY(:v)",
}


def _chains(session: Session, start: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The resolved manager edges above ``start``, one query per level of the hierarchy."""
    edges: dict[uuid.UUID, uuid.UUID] = {}
    seen: set[uuid.UUID] = set()
    frontier = set(start)
    for _ in range(MAX_DEPTH):
        if not frontier:
            break
        seen |= frontier
        rows = session.execute(
            text(
                "SELECT id, manager_id FROM users WHERE id = ANY(:ids) "
                "AND manager_state = 'resolved' AND manager_id IS NOT NULL"
            ),
            {"ids": list(frontier)},
        ).all()
        edges.update({row.id: row.manager_id for row in rows})
        frontier = {row.manager_id for row in rows} - seen
    return edges


def _reaches(edges: dict[uuid.UUID, uuid.UUID], start: uuid.UUID, target: uuid.UUID) -> bool:
    node: uuid.UUID | None = start
    for _ in range(MAX_DEPTH):
        if node is None:
            return False
        if node == target:
            return True
        node = edges.get(node)
    return True  # deeper than any real organization: refuse rather than risk a loop


@dataclass
class PassResult:
    changed: int  # references whose state changed
    skipped: int  # references left for the next pass: their row was locked by a write


def resolve_pending(session: Session, org_id: uuid.UUID) -> PassResult:
    """Resolve every pending reference of the organization at once (the caller holds
    ``lock_org``). A handful of statements whatever the number of references: the pending
    rows, one indexed ``= ANY`` lookup per key, one query per level of the hierarchy for the
    cycle check, one UPDATE. Same rules as ``resolve``, applied in creation order (so of two
    references forming a cycle, the later one is refused). Rows locked by a write are skipped
    (counted in the result) for the next pass."""
    pending = session.execute(
        text(
            "SELECT id, manager_value, manager_reason FROM users "
            "WHERE org_id = :org AND manager_state = 'pending' ORDER BY seq"
        ),
        {"org": org_id},
    ).all()
    if not pending:
        return PassResult(0, 0)
    values = {row.manager_value for row in pending if row.manager_value}
    wanted = {
        "id": sorted({str(u) for v in values if (u := _as_uuid(v)) is not None}),
        "externalId": sorted(values),
        "userName": sorted({v.lower() for v in values}),
        "employeeNumber": sorted(values),
    }
    by_key: dict[str, dict[str, list[uuid.UUID]]] = {}
    for name, sql in _MATCHES.items():
        found: dict[str, list[uuid.UUID]] = {}
        if wanted[name]:
            for row in session.execute(text(sql), {"org": org_id, "v": wanted[name]}):
                found.setdefault(row.k, []).append(row.id)
        by_key[name] = found
    picks = {row.id: _pick(row.manager_value or "", by_key) for row in pending}
    edges = _chains(session, {mid for mid, _ in picks.values() if mid is not None})
    changes: list[tuple[uuid.UUID, str, uuid.UUID | None, str | None, str]] = []
    for row in pending:
        manager_id, reason = picks[row.id]
        state = "pending"
        if not row.manager_value:
            state, manager_id, reason = "none", None, None
        elif manager_id == row.id:
            state, manager_id, reason = "invalid", None, SELF
        elif manager_id is not None and _reaches(edges, manager_id, row.id):
            state, manager_id, reason = "invalid", None, CYCLE
        elif manager_id is not None:
            state = "resolved"
            edges[row.id] = manager_id
        if (state, reason) != ("pending", row.manager_reason):
            changes.append((row.id, state, manager_id, reason, row.manager_value or ""))
    if not changes:
        return PassResult(0, 0)
    # Rows a write (or a long license check) holds are skipped, not waited for: a pass that
    # waited would hold up every other reference of the organization behind one row.
    locked = set(
        session.scalars(
            text("SELECT id FROM users WHERE id = ANY(CAST(:ids AS uuid[])) "
                 "FOR UPDATE SKIP LOCKED"),
            {"ids": [str(c[0]) for c in changes]},
        )
    )
    skipped = sum(1 for c in changes if c[0] not in locked)
    changes = [c for c in changes if c[0] in locked]
    if not changes:
        return PassResult(0, skipped)
    ids, states, managers_, reasons, values_ = (list(col) for col in zip(*changes, strict=True))
    # The guard on state and value: a write that changed the reference since it was read
    # keeps its own (pending) state and has enqueued the next run.
    result = session.execute(
        text(
            """
            UPDATE users AS u
            SET manager_state = v.state, manager_id = v.manager_id, manager_reason = v.reason
            FROM unnest(CAST(:ids AS uuid[]), CAST(:states AS text[]),
                        CAST(:managers AS uuid[]), CAST(:reasons AS text[]),
                        CAST(:vals AS text[])) AS v(id, state, manager_id, reason, val)
            WHERE u.id = v.id AND u.manager_state = 'pending'
              AND coalesce(u.manager_value, '') = v.val
            """
        ),
        {"ids": ids, "states": states, "managers": managers_, "reasons": reasons,
         "vals": values_},
    )
    return PassResult(rowcount(result), skipped)


def reports_of(session: Session, manager_id: uuid.UUID) -> list[uuid.UUID]:
    return list(session.scalars(select(User.id).where(User.manager_id == manager_id)))


def release_reports(session: Session, manager: User) -> int:
    """A manager is being deleted: its reports' references go back to pending."""
    result = session.execute(
        update(User)
        .where(User.manager_id == manager.id)
        .values(manager_state="pending", manager_id=None, manager_reason=DELETED)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def unresolved(
    session: Session, org_id: uuid.UUID, states: Iterable[str] = ("pending", "invalid")
) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .where(User.org_id == org_id, User.manager_state.in_(list(states)))
            .order_by(User.seq)
        )
    )
