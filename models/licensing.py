"""Seats of a paid organization: which active users hold a license.

``reconcile`` is the one rule, run with the organization's row locked (so two workers never
hand out more than ``seats``): inactive users give their seat back; free seats go to waiting
active users, oldest (by creation) first; if seats shrank below the licensed count, the most
recently licensed give theirs back; everyone active without a seat is ``unlicensed``. An
overflow episode is open while anyone waits (``seat_overflow_since``). Free plans keep
``license_state = 'none'``. No commit here.

The licensed and the waiting counts are read from the tally of users (migrations 0010 and
0013), not counted: its triggers count licensed and waiting users inserted and deleted, and
``reconcile``, the only writer of ``license_state``, adds what its updates changed (the rows
they changed: a user deleted meanwhile is not counted twice).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, exists, literal_column, select, text, update
from sqlalchemy.orm import Session

from models.db import any_of, rowcount, utcnow
from models.organization import Organization
from models.user import User


@dataclass
class Reconciled:
    licensed: list[uuid.UUID] = field(default_factory=list)
    unlicensed: list[uuid.UUID] = field(default_factory=list)
    waiting: bool = False  # anyone active without a seat (how many: ``waiting_count``)
    opened_overflow: dt.datetime | None = None  # start of a new overflow episode
    seats: int = 0
    in_use: int = 0


def lock_org(session: Session, org_id: uuid.UUID) -> Organization | None:
    """FOR NO KEY UPDATE: serializes checks, yet does not block the FOR KEY SHARE locks that
    inserting users and jobs (foreign keys to the organization) take — FOR UPDATE would stall
    every SCIM write of the organization for the check's length, and deadlock with them."""
    return session.scalar(
        select(Organization)
        .where(Organization.id == org_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


def _set(session: Session, ids: list[uuid.UUID], **values: object) -> int:
    """Update the users ``ids`` still there; how many were."""
    if not ids:
        return 0
    # One array parameter however many ids (a re-sync hands out 100,000 seats at once; an IN
    # list would need chunks under PostgreSQL's 65,535 parameters).
    return rowcount(session.execute(
        update(User)
        .where(any_of(User.id, ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    ))


def state_is(state: str, *, negate: bool = False) -> ColumnElement[bool]:
    """``license_state = '<state>'`` (or ``<>``) with the state as an SQL literal, not a bound
    parameter, as models/managers.py's ``IS_PENDING``: psycopg prepares repeated statements,
    and PostgreSQL's generic plan for ``license_state = $2`` can neither prove a partial
    index's predicate nor tell how few rows match, so it read every licensed user of the
    organization: at 100,000 users a check took 90 ms instead of 7 (bench/
    bench_license_check.py; tests/integration/test_license_plans.py)."""
    value: ColumnElement[str] = literal_column(f"'{state}'")
    return User.license_state != value if negate else User.license_state == value


def waiting_count(session: Session, org_id: uuid.UUID) -> int:
    """How many active users of ``org_id`` wait for a seat (the tally: a few rows, where
    counting them took 41-90 ms with 500,000 waiting)."""
    return int(session.execute(_WAITING, {"org_id": org_id}).scalar_one())


def anyone_waiting(session: Session, org_id: uuid.UUID) -> bool:
    """Whether anyone waits: one index entry, where counting them read 99,000 entries on every
    check at 100,000 users with 1,000 seats (38 ms a check, 7-9 with this: bench/
    bench_license_check.py --seats 1000)."""
    return session.scalar(select(exists().where(
        User.org_id == org_id, state_is("unlicensed")))) or False


_LICENSED = text("SELECT licensed FROM user_tallies_sum(:org_id)")  # store.user_tally's read
_WAITING = text("SELECT waiting FROM user_tallies_sum(:org_id)")
_ADD = text("SELECT user_tallies_add(:org_id, 0, 0, :licensed, :waiting)")


def _release(session: Session, in_org: ColumnElement[bool], state: str) -> int:
    """Inactive users of ``state`` give it up; how many did."""
    return rowcount(session.execute(
        update(User)
        .where(in_org, User.active.is_(False), state_is(state))
        .values(license_state="none", licensed_at=None)
        .execution_options(synchronize_session=False)
    ))


def licensed_count(session: Session, org_id: uuid.UUID) -> int:
    """How many of ``org_id``'s users hold a license (the tally: a few rows, not a count)."""
    return int(session.execute(_LICENSED, {"org_id": org_id}).scalar_one())


def reconcile(session: Session, org_id: uuid.UUID) -> Reconciled:
    org = lock_org(session, org_id)
    result = Reconciled()
    if org is None or org.plan != "paid":
        return result
    granted = taken = waited = 0
    in_org = User.org_id == org_id
    released = _release(session, in_org, "licensed")
    stopped_waiting = _release(session, in_org, "unlicensed")
    licensed = licensed_count(session, org_id) - released
    free = org.seats - licensed
    now = utcnow()
    if free > 0:
        chosen = session.execute(
            select(User.id, User.license_state)
            .where(in_org, User.active.is_(True), state_is("licensed", negate=True))
            .order_by(User.seq)
            .limit(free)
        ).all()
        result.licensed = [row.id for row in chosen]
        # This check holds the organization's lock and is the only writer of license_state,
        # so the state read is the state each update replaces; a user deleted meanwhile is
        # in neither row count (the delete trigger counted it).
        waited_for = [row.id for row in chosen if row.license_state == "unlicensed"]
        new = [row.id for row in chosen if row.license_state != "unlicensed"]
        stopped = _set(session, waited_for, license_state="licensed", licensed_at=now)
        granted = stopped + _set(session, new, license_state="licensed", licensed_at=now)
        stopped_waiting += stopped
    elif free < 0:
        result.unlicensed = list(
            session.scalars(
                select(User.id)
                .where(in_org, state_is("licensed"))
                .order_by(User.licensed_at.desc(), User.seq.desc())
                .limit(-free)
            )
        )
        taken = waited = _set(session, result.unlicensed, license_state="unlicensed",
                              licensed_at=None)
    if free - len(result.licensed) <= 0:
        # Every seat is taken: the active users not yet counted wait. While seats remain
        # free, users committed since the SELECT above are left to their own check job;
        # marking them would open an overflow episode (and its notice) with seats still free.
        waited += rowcount(session.execute(
            update(User)
            .where(in_org, User.active.is_(True), state_is("none"))
            .values(license_state="unlicensed")
            .execution_options(synchronize_session=False)
        ))
    result.waiting = anyone_waiting(session, org_id)
    result.seats = org.seats
    result.in_use = licensed + granted - taken
    delta_licensed, delta_waiting = granted - taken - released, waited - stopped_waiting
    if delta_licensed or delta_waiting:
        session.execute(_ADD, {"org_id": org_id, "licensed": delta_licensed,
                               "waiting": delta_waiting})
    if result.waiting and org.seat_overflow_since is None:
        org.seat_overflow_since = result.opened_overflow = now
    elif not result.waiting and org.seat_overflow_since is not None:
        org.seat_overflow_since = None
    return result


def admins(session: Session, org_id: uuid.UUID) -> list[User]:
    """Active org admins with an email address: who hears about seats and deactivations."""
    return list(
        session.scalars(
            select(User)
            .where(
                User.org_id == org_id,
                User.is_admin.is_(True),
                User.active.is_(True),
                User.primary_email.is_not(None),
            )
            .order_by(User.seq)
        )
    )


def states(session: Session, org_id: uuid.UUID, state: str | None = None) -> list[User]:
    stmt = select(User).where(User.org_id == org_id).order_by(User.seq)
    if state:
        stmt = stmt.where(User.license_state == state)
    return list(session.scalars(stmt))
