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

from sqlalchemy import Index, func, literal, or_, select, text, union_all, update
from sqlalchemy.orm import Session

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
    levels = (
        ("id", lambda r: r.id == as_id),
        ("externalId", lambda r: r.external_id == value),
        ("userName", lambda r: (r.user_name or "").lower() == lowered),
        ("employeeNumber", lambda r: r.employee_number == value),
    )
    for name, matches in levels:
        hits = [r for r in rows if matches(r)]
        if len(hits) == 1:
            return hits[0].id, None
        if len(hits) > 1:
            return None, f"ambiguous: {len(hits)} users have this {name}"
    return None, NOT_FOUND


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
            .where(User.id.in_(wanted))
            .order_by(User.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


# The state as an SQL literal, not a bound parameter: psycopg prepares repeated statements, and
# PostgreSQL's generic plan for ``manager_state = $2`` cannot use the partial index (it cannot
# prove $2 = 'pending'), so it would scan the organization for every user.
IS_PENDING = text("users.manager_state = 'pending'")


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
    return result.rowcount or 0


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
