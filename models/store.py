"""Create, get, search, replace and delete SCIM resources, with version checks.

The store is the only writer of users: it derives the indexed columns from the stored
attributes, bumps ``version`` only when something really changed, and writes follow-up jobs in
the same transaction. It never commits: the caller owns the transaction (a create or update on
an autocommit connection or session is one statement, which is its own transaction).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from models import followups, jobs, memberships, outbox
from models.db import driver_rows, jsonb, new_id, pg_array, utcnow
from models.errors import DuplicateError, NotFoundError, VersionConflict
from models.user import User

if TYPE_CHECKING:
    from models.group import Group

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _primary_value(entries: Any) -> str | None:
    if not isinstance(entries, list) or not entries:
        return None
    for entry in entries:
        if isinstance(entry, dict) and entry.get("primary") is True and entry.get("value"):
            return entry["value"]
    first = entries[0]
    return first.get("value") if isinstance(first, dict) else None


def user_columns(attrs: dict) -> dict[str, Any]:
    """The indexed columns of a user, derived from its stored SCIM attributes."""
    name = attrs.get("name") or {}
    enterprise = attrs.get(ENTERPRISE) or {}
    emails = attrs.get("emails") or []
    manager = enterprise.get("manager") or {}
    return {
        "user_name": attrs["userName"],
        "external_id": attrs.get("externalId"),
        "active": attrs.get("active", True),
        "display_name": attrs.get("displayName"),
        "given_name": name.get("givenName"),
        "family_name": name.get("familyName"),
        "nick_name": attrs.get("nickName"),
        "title": attrs.get("title"),
        "primary_email": _primary_value(emails),
        "emails_lower": sorted(
            {e["value"].lower() for e in emails if isinstance(e, dict) and e.get("value")}
        ),
        "employee_number": enterprise.get("employeeNumber"),
        "department": enterprise.get("department"),
        "manager_value": manager.get("value"),
    }


def _is_unique_violation(exc: IntegrityError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "23505"


_USERS = User.__table__


class StoredUser(Protocol):
    """A user as stored, to be read: a ``User``, or a row of the users columns as ``driver_rows``
    returns it (a named tuple; a create's is a namespace of the values it inserted). Each answers
    every column as an attribute; these are the ones read by name (``replace_user`` also reads
    the columns ``user_columns`` derives). A request that only shows or rewrites a user keeps
    the row: building a ``User`` of it and setting the written row back on it took a PUT's CPU
    from 1,011 to 1,160 µs and a deactivation's from 770 to 884 (measured in one process)."""

    id: uuid.UUID
    org_id: uuid.UUID
    attrs: dict
    version: int
    created: dt.datetime
    last_modified: dt.datetime
    manager_id: uuid.UUID | None
    manager_value: str | None
    manager_state: str
    manager_reason: str | None
    license_state: str


def _resolve_cte(rows: str, condition: str) -> str:
    """SQL of the CTE ``resolve``: the groups.resolve_members job of the user a statement
    writes (``rows``, the CTE holding its row), when ``condition`` (a pending group member may
    name it); the worker links only exact matches. Constant fragments only: hence the noqa."""
    return f"""resolve AS (
        INSERT INTO jobs (org_id, kind, dedup_key, subject_id, payload, state, attempts,
                          progress_done, progress_total, created, updated)
        SELECT :org_id, :resolve_kind, :resolve_key, CAST(:id AS text), '{{}}'::jsonb,
               'pending', 0, 0, 0, now(), now()
        FROM {rows} WHERE {condition}
        ON CONFLICT (dedup_key) DO NOTHING
        RETURNING id, kind
    )"""  # noqa: S608


# The columns a create writes (``seq`` comes from its identity).
_CREATE_COLUMNS = tuple(c.name for c in _USERS.c if c.name != "seq")
# A create is one statement: the users row; the organization's coalesced follow-up jobs,
# joined under their shared advisory locks (models/jobs.py); and a groups.resolve_members job
# when a pending group member may name the new user (the worker links only exact matches).
# On an autocommit connection it is the request's one round trip: no BEGIN, no COMMIT, no
# second statement (those were ~0.45 ms of a create's CPU). Its result: the row's seq and the
# jobs written, as [[id, kind], ...]. Constant fragments only: hence the noqa.
_CREATE_USER = text(
    f"""
    WITH {jobs.coalesced_ctes()},
    new_user AS (
        INSERT INTO users ({", ".join(_CREATE_COLUMNS)})
        VALUES ({", ".join(f":{name}" for name in _CREATE_COLUMNS)})
        RETURNING seq, {memberships.PENDING_NAMING_NEW_ROW} AS maybe_named
    ),
    {_resolve_cte("new_user", "maybe_named")}
    SELECT seq, (SELECT coalesce(json_agg(json_build_array(id, kind)), '[]')
                 FROM (SELECT * FROM coalesced UNION ALL SELECT * FROM resolve) AS written)
    FROM new_user
    """  # noqa: S608
).bindparams(*(bindparam(name, type_=_USERS.c[name].type) for name in _CREATE_COLUMNS))
# The columns an update derives from the attributes (besides attrs itself).
_DERIVED = tuple(user_columns({"userName": ""}))
# An update is one statement too: the row, with its version checked in the WHERE (two writers
# from the same read cannot both succeed: the second matches nothing, and writes no job), and
# the jobs models/followups.py decided for it. A new manager reference clears the resolved
# one; a password hash is replaced only when a new one is given. Its result: the row as
# written, and the jobs written as [[id, kind], ...] (``written_jobs``).
_UPDATE_USER = text(
    f"""
    WITH updated AS (
        UPDATE users SET
            {", ".join(f"{name} = :{name}" for name in _DERIVED)},
            attrs = :attrs, last_modified = :last_modified, version = version + 1,
            manager_state = CASE WHEN :manager_changed THEN :manager_state
                                 ELSE manager_state END,
            manager_id = CASE WHEN :manager_changed THEN NULL ELSE manager_id END,
            manager_reason = CASE WHEN :manager_changed THEN NULL ELSE manager_reason END,
            password_hash = coalesce(:password_hash, password_hash)
        WHERE id = :id AND version = :read_version
        RETURNING *
    ),
    {jobs.coalesced_ctes(guard="EXISTS (SELECT 1 FROM updated)")},
    singles AS (
        INSERT INTO jobs (org_id, kind, dedup_key, subject_id, payload, state, attempts,
                          progress_done, progress_total, created, updated)
        SELECT :org_id, t.kind, t.key, CAST(:id AS text), t.payload, 'pending', 0, 0, 0,
               now(), now()
        FROM unnest(CAST(:single_kinds AS text[]), CAST(:single_keys AS text[]),
                    CAST(:single_payloads AS jsonb[])) AS t(kind, key, payload)
        WHERE EXISTS (SELECT 1 FROM updated)
        ON CONFLICT (dedup_key) DO NOTHING
        RETURNING id, kind
    ),
    {_resolve_cte("updated AS users", f":check_pending AND {memberships.PENDING_NAMING_NEW_ROW}")}
    SELECT updated.*, (
        SELECT coalesce(json_agg(json_build_array(id, kind)), '[]') FROM (
            SELECT * FROM coalesced UNION ALL SELECT * FROM singles UNION ALL SELECT * FROM resolve
        ) AS written
    ) AS written_jobs
    FROM updated
    """  # noqa: S608
).bindparams(
    *(bindparam(name, type_=_USERS.c[name].type) for name in (*_DERIVED, "attrs")),
    bindparam("manager_changed", type_=Boolean), bindparam("check_pending", type_=Boolean),
)


@dataclass
class WriteResult:
    user: StoredUser  # the row as written (a ``User`` when one was given)
    changed: bool
    job_ids: list[int]
    # The kind of each job written, when the write knows it (for publishing without a read).
    job_kinds: dict[int, str] = field(default_factory=dict)


def create_user(
    db: Session | Connection,
    org_id: uuid.UUID,
    attrs: dict,
    password_hash: str | None = None,
    *,
    paid: bool | None = None,
) -> WriteResult:
    """Insert a user with its follow-up jobs, in one statement. ``db``: a session (the insert
    joins its transaction, and the user the session) or an autocommit connection (the
    statement commits on its own). ``paid`` (here and below): whether the organization is on
    the paid plan, when the caller knows it (SCIM requests are authenticated as paid); None
    reads it."""
    now = utcnow()
    values = {
        "id": new_id(),
        "org_id": org_id,
        "attrs": attrs,
        "password_hash": password_hash,
        "created": now,
        "last_modified": now,
        "version": 1,
        "manager_id": None,
        "manager_reason": None,
        "license_state": "none",
        "licensed_at": None,
        "is_admin": False,
        **user_columns(attrs),
    }
    values["manager_state"] = "pending" if values["manager_value"] else "none"
    if paid is None:
        paid = followups.org_is_paid(db, org_id)
    kinds = followups.created_kinds(paid=paid, active=values["active"])
    params = {
        **values,
        **jobs.coalesced_params(org_id, kinds),
        "resolve_kind": memberships.RESOLVE_KIND,
        "resolve_key": f"{memberships.RESOLVE_KIND}:{values['id']}:1",
    }
    try:
        # No savepoint: a failed create fails the request (and its transaction, if any).
        ((seq, written),) = driver_rows(_connection(db), _CREATE_USER,
                                        {**params, "attrs": jsonb(attrs)})
    except IntegrityError as exc:
        if _is_unique_violation(exc):
            raise DuplicateError(f"userName '{attrs['userName']}' is already taken") from None
        raise
    job_kinds = {int(job_id): kind for job_id, kind in written}
    if not isinstance(db, Session):  # a SCIM create: the row is only shown
        return WriteResult(SimpleNamespace(**values, seq=seq), True, list(job_kinds), job_kinds)
    # The row as written, as a loaded, unchanged object joined to the session, so later changes
    # to it are flushed as usual: a Core INSERT skips the unit of work, which was a quarter of
    # a create's CPU.
    user = User(**values, seq=seq)
    make_transient_to_detached(user)
    db.add(user)
    jobs.remember(db, job_kinds.items())
    return WriteResult(user, True, list(job_kinds), job_kinds)


def get_user(
    session: Session, org_id: uuid.UUID, user_id: str | uuid.UUID, *, lock: bool = False
) -> User:
    """The user ``user_id`` of ``org_id``, in ``session`` (to be changed or deleted through it);
    ``lock`` takes a row lock until the transaction ends."""
    row = session.execute(_user_row(lock), {"uid": _user_uuid(user_id), "org_id": org_id}).first()
    if row is None:
        raise NotFoundError(f"User {user_id} not found")
    return row[0]


def _user_uuid(user_id: str | uuid.UUID) -> uuid.UUID:
    try:
        return user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
    except ValueError:
        raise NotFoundError(f"User {user_id} not found") from None


@functools.cache
def _user_row(lock: bool) -> Any:
    # Built once: SQLAlchemy memoizes a statement's cache key on the object.
    stmt = select(User).where(User.id == bindparam("uid"), User.org_id == bindparam("org_id"))
    if lock:
        stmt = stmt.with_for_update(of=User).execution_options(populate_existing=True)
    return stmt


@dataclass(frozen=True)
class ShownUser:
    """A user as a SCIM response shows it: its row, its direct groups and its manager."""

    user: StoredUser  # the row as read or written: ``replace_user`` writes it, a response shows it
    groups: list[tuple[Any, str]]  # (id, displayName)
    manager_name: str | None  # the resolved manager's displayName, else userName


def read_user(
    connection: Connection, org_id: uuid.UUID, user_id: str | uuid.UUID, *, lock: bool = False
) -> ShownUser:
    """The user ``user_id`` of ``org_id`` with its groups and manager's name, in one statement
    on the psycopg connection (``driver_rows``: the ORM's loading was most of a GET's and a
    PUT's SQLAlchemy time). ``lock`` takes a row lock until ``connection``'s transaction ends
    (the last resort of a writer that keeps losing optimistic races)."""
    rows = driver_rows(connection, _shown_user(lock),
                       {"uid": _user_uuid(user_id), "org_id": org_id})
    if not rows:
        raise NotFoundError(f"User {user_id} not found")
    return _shown_from(rows[0])


def _shown_from(row: Any) -> ShownUser:
    """A ``ShownUser`` from a row of the users columns plus ``shown_groups`` and
    ``shown_manager``."""
    groups = [(gid, name) for gid, name in row.shown_groups or ()]
    return ShownUser(row, groups, row.shown_manager)


def _published(written_jobs: list) -> dict[int, str]:
    """The jobs a statement wrote (``[[id, kind], ...]``) that are published after it."""
    return {int(job_id): kind for job_id, kind in written_jobs
            if kind not in followups.UNPUBLISHED}


def _connection(db: Session | Connection) -> Connection:
    """The connection a statement runs on: the session's (in its transaction), or ``db``."""
    return db.connection() if isinstance(db, Session) else db


@functools.cache
def _shown_user(lock: bool) -> Any:
    stmt = select(
        *_USERS.c,
        memberships.groups_column().label("shown_groups"),
        memberships.manager_column().label("shown_manager"),
    ).where(_USERS.c.id == bindparam("uid"), _USERS.c.org_id == bindparam("org_id"))
    return stmt.with_for_update(of=_USERS) if lock else stmt


def replace_user(
    db: Session | Connection,
    user: StoredUser,
    attrs: dict,
    *,
    password_hash: str | None = None,
    expected_version: int | None = None,
    paid: bool | None = None,
) -> WriteResult:
    """Store ``attrs`` as the user's new attributes (and a new password hash if given), with
    the write's follow-up jobs, in one statement. ``db``: a session in a transaction, or an
    autocommit connection (the statement commits on its own).

    A write that changes nothing is not a write: version, lastModified and follow-ups stay.
    ``expected_version`` (default: the version read) is checked in the UPDATE itself, so two
    concurrent writers cannot both succeed from the same read.
    """
    read_version = user.version if expected_version is None else expected_version
    if attrs == user.attrs and password_hash is None:
        return WriteResult(user, False, [])
    columns = user_columns(attrs)
    if paid is None:
        paid = followups.org_is_paid(db, user.org_id)
    planned = followups.updated_jobs(
        user.id, {name: getattr(user, name) for name in _DERIVED}, columns,
        version=read_version + 1, paid=paid,
    )
    manager_changed = columns["manager_value"] != user.manager_value
    params = {
        **columns,
        "attrs": attrs,
        "last_modified": utcnow(),
        "manager_changed": manager_changed,
        "manager_state": "pending" if columns["manager_value"] else "none",
        "password_hash": password_hash,
        "id": user.id,
        "read_version": read_version,
        **jobs.coalesced_params(user.org_id, planned.coalesced),
        "single_kinds": pg_array(kind for kind, _, _ in planned.singles),
        "single_keys": pg_array(key for _, key, _ in planned.singles),
        "single_payloads": pg_array(json.dumps(payload) for _, _, payload in planned.singles),
        "check_pending": planned.check_pending,
        "resolve_kind": memberships.RESOLVE_KIND,
        "resolve_key": f"{memberships.RESOLVE_KIND}:{user.id}:{read_version + 1}",
    }
    try:
        rows = driver_rows(_connection(db), _UPDATE_USER, {**params, "attrs": jsonb(attrs)})
    except IntegrityError as exc:
        if _is_unique_violation(exc):
            raise DuplicateError(f"userName '{attrs['userName']}' is already taken") from None
        raise
    if not rows:
        raise VersionConflict(f"User {user.id} was changed by another request")
    # The row as written (with what the worker may have changed since the read) is the result;
    # a ``User`` given gets it as its loaded state (a Core UPDATE skips the ORM's bulk-update
    # machinery, which was a fifth of a PATCH's CPU).
    written = rows[0]
    result: StoredUser = written
    if isinstance(user, User):
        for key in _USERS.c.keys():
            set_committed_value(user, key, getattr(written, key))
        result = user
    job_kinds = _published(written.written_jobs)
    if isinstance(db, Session):
        jobs.remember(db, job_kinds.items())
    return WriteResult(result, True, list(job_kinds), job_kinds)


# Setting ``active`` alone (Entra's deactivation, Okta's too) is one statement, without the
# read a general PATCH needs: the attribute and its column are set only if they differ, and the
# jobs ``followups.activity_jobs`` names are written with it (the deactivation notice keyed by
# the version the UPDATE made, as ``followups.updated_jobs`` keys it). A user whose stored
# attributes say so already is not written (a write that changes nothing is not a write); its
# row is read in the same statement (Entra's and Okta's retries, W3's half). Its result: the
# row as written or read, whether it was written, its groups and its manager's name (as
# ``memberships.groups_column`` and ``manager_column`` read them) and the jobs written. No
# row: no such user; one stored without ``active`` (true by default) being activated, which
# writes the attribute but needs no job; or a concurrent write between the statement's
# snapshot and its UPDATE. The caller then takes the general path, which tells them apart.
_SET_ACTIVE = text(
    f"""
    WITH updated AS (
        UPDATE users SET active = :active,
            attrs = jsonb_set(attrs, '{{active}}', to_jsonb(CAST(:active AS boolean))),
            last_modified = :last_modified, version = version + 1
        WHERE id = :id AND org_id = :org_id AND active IS DISTINCT FROM :active
        RETURNING *
    ),
    {jobs.coalesced_ctes(guard="EXISTS (SELECT 1 FROM updated)")},
    singles AS (
        INSERT INTO jobs (org_id, kind, dedup_key, subject_id, payload, state, attempts,
                          progress_done, progress_total, created, updated)
        SELECT :org_id, k.kind, k.kind || ':' || u.id || ':' || u.version, CAST(u.id AS text),
               jsonb_build_object('user_id', CAST(u.id AS text), 'version', u.version),
               'pending', 0, 0, 0, now(), now()
        FROM updated AS u, (SELECT CAST(:notice_kind AS text) AS kind) AS k WHERE :notice
        ON CONFLICT (dedup_key) DO NOTHING
        RETURNING id, kind
    )
    SELECT users.*,
        (SELECT jsonb_agg(jsonb_build_array(groups.id, groups.display_name) ORDER BY groups.seq)
         FROM memberships JOIN groups ON groups.id = memberships.group_id
         WHERE memberships.user_id = users.id) AS shown_groups,
        (SELECT coalesce(manager.display_name, manager.user_name)
         FROM users AS manager WHERE manager.id = users.manager_id) AS shown_manager,
        (SELECT coalesce(json_agg(json_build_array(id, kind)), '[]') FROM (
            SELECT * FROM coalesced UNION ALL SELECT * FROM singles) AS written
        ) AS written_jobs
    FROM (
        SELECT *, true AS changed FROM updated
        UNION ALL
        SELECT *, false FROM users
        WHERE id = :id AND org_id = :org_id
              AND attrs -> 'active' = to_jsonb(CAST(:active AS boolean))
              AND NOT EXISTS (SELECT 1 FROM updated)
    ) AS users
    """  # noqa: S608
).bindparams(bindparam("active", type_=Boolean), bindparam("notice", type_=Boolean))


def set_user_active(
    connection: Connection, org_id: uuid.UUID, user_id: uuid.UUID, active: bool, *, paid: bool
) -> tuple[WriteResult, ShownUser] | None:
    """Set the user's ``active`` in one statement on an autocommit ``connection`` (its own
    transaction), with its follow-up jobs, unless it is so already; None when this statement
    cannot answer (no such user, among others: see ``_SET_ACTIVE``)."""
    coalesced, notice = followups.activity_jobs(active, paid=paid)
    rows = driver_rows(connection, _SET_ACTIVE, {
        "active": active, "last_modified": utcnow(), "id": user_id,
        **jobs.coalesced_params(org_id, coalesced),
        "notice_kind": followups.KIND_NOTIFY_DEACTIVATED, "notice": notice,
    })
    if not rows:
        return None
    written = rows[0]
    job_kinds = _published(written.written_jobs)
    return WriteResult(written, written.changed, list(job_kinds), job_kinds), _shown_from(written)


def delete_user(session: Session, user: User, *, paid: bool | None = None) -> list[int]:
    job_ids = followups.user_deleted(session, user, paid=paid)
    session.delete(user)
    session.flush()
    # After the user's row, so that a welcome being sent meanwhile either waits for this
    # transaction or is waited for (see forget_welcome).
    outbox.forget_welcome(session, user.id)
    return job_ids


@dataclass
class Page:
    rows: Sequence[Any]
    total: int
    more: bool = False
    # Values of the ``extra_columns`` asked for, one tuple per row.
    extras: Sequence[tuple] = ()


@dataclass(frozen=True)
class Tally:
    users: int  # how many users the organization has
    changes: int  # inserts and deletes of its users so far: unchanged means the same users


# Kept by triggers on users, in the writing transaction (migration 0008): a few rows per
# organization instead of COUNT(*) over all of its index entries. Read through migration 0016's
# function, whose index scan skips the entries of the rows folded away since the last VACUUM.
_TALLY = text("SELECT users, changes FROM user_tallies_sum(:org_id)")


def user_tally(session: Session, org_id: uuid.UUID) -> Tally:
    """``org_id``'s number of users and count of user inserts and deletes, as committed."""
    users, changes = session.execute(_TALLY, {"org_id": org_id}).one()
    return Tally(int(users), int(changes))


def user_tally_columns(org_id: uuid.UUID | BindParameter[Any]) -> list[Any]:
    """``user_tally`` as one uncorrelated scalar subquery, ``[users, changes]``, to read it with
    a page of users: in the page's own statement (one round trip less) and snapshot (the total
    and the rows agree). PostgreSQL evaluates it once per statement, not per row."""
    summed = func.user_tallies_sum(org_id).table_valued("users", "changes")
    return [select(array([summed.c.users, summed.c.changes])).scalar_subquery()]


@dataclass(frozen=True)
class Tallier:
    """How a resource type's whole set is counted without COUNT(*): alone, or as a column of a
    page's query (its value: ``Tally(*row[-1])``)."""

    read: Callable[[Session, uuid.UUID], Tally]
    columns: Callable[[uuid.UUID], list[Any]]


USER_TALLY = Tallier(user_tally, user_tally_columns)


def search(
    session: Session,
    model: type[User] | type[Group],
    org_id: uuid.UUID,
    where: ColumnElement[bool] | None,
    *,
    order_by: Sequence[Any] = (),
    offset: int = 0,
    limit: int = 100,
    with_total: bool = True,
    after_seq: int | None = None,
    before_seq: int | None = None,
    extra_columns: Sequence[Any] = (),
    columns: Sequence[Any] = (),
) -> Page:
    """One page of ``model`` rows of ``org_id`` matching ``where`` (compiled from a SCIM
    filter), in a stable order (the given keys, then insertion order).

    ``after_seq``/``before_seq`` page by keyset on the insertion sequence instead of OFFSET
    (only without ``order_by``): the rows just after, or just before, that position. ``more``
    tells whether rows remain beyond the page in that direction. ``extra_columns`` (e.g. a
    correlated subquery) are read in the same query, into ``Page.extras``. With ``columns``
    (some of the model's), the rows are result rows of those columns, not ORM objects: a page
    that is only rendered needs no identity map or instance state (a fifth of an import
    page's CPU).
    """
    selected = [*columns] if columns else [model]
    conditions = [model.org_id == org_id]
    if where is not None:
        conditions.append(where)
    total: int | None = None
    rows: Sequence[Any] = []
    extras: list[tuple] = []
    more = False
    keyset = after_seq is not None or before_seq is not None
    if limit > 0:
        stmt = select(*selected, *extra_columns).where(*conditions)
        if before_seq is not None:
            stmt = stmt.where(model.seq < before_seq).order_by(model.seq.desc())
        elif offset > 0:
            # Deferred join: pick the page's keys first, then read those rows. In one query,
            # PostgreSQL would read and project (groups subquery included) every skipped row,
            # so the last page of an import cost as much as all the pages before it.
            keys = select(model.id).where(*conditions)
            if after_seq is not None:
                keys = keys.where(model.seq > after_seq)
            picked = keys.order_by(*order_by, model.seq).offset(offset).limit(limit + 1).subquery()
            stmt = (
                select(*selected, *extra_columns)
                .join(picked, model.id == picked.c.id)
                .order_by(*order_by, model.seq)
            )
        else:
            if after_seq is not None:
                stmt = stmt.where(model.seq > after_seq)
            stmt = stmt.order_by(*order_by, model.seq)
        fetched = session.execute(stmt.limit(limit + 1)).all()
        more = len(fetched) > limit
        page = list(fetched[:limit])
        if before_seq is not None:
            page.reverse()
        width = len(selected)
        rows = [row if columns else row[0] for row in page]
        extras = [tuple(row[width:]) for row in page]
        if not keyset and not more and (fetched or offset == 0):
            # The page reaches the end: the total is known without counting (an IdP's
            # lookup by userName is one round trip). A window count would have made
            # PostgreSQL read every matching row for every page of an import.
            total = offset + len(fetched)
    if with_total and total is None:
        total = session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
    return Page(rows, total or 0, more, extras)
