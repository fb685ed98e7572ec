"""Which follow-up jobs a user write needs (manager resolution, license check, mail).

A create and an update write their jobs in their own statement (models/store.py), from the
kinds and keys decided here; a deletion writes them here, in its transaction. The caller
publishes the new jobs' ids after commit. Dedup keys are (kind, subject, version): a retried or
repeated write of the same version writes no second job. Organization-wide work (resolving
pending manager references, the license check) is one coalesced job per organization. The job
kinds and their tasks are mapped in tasks/outbox.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models import managers
from models.jobs import (
    KIND_LICENSE_CHECK,
    KIND_MANAGERS,
    KIND_MANAGERS_ORG,
    KIND_NOTIFY_DEACTIVATED,
    KIND_NOTIFY_DEACTIVATED_ORG,
    enqueue_coalesced,
)
from models.organization import Organization
from models.user import User

# The columns a manager reference can name a user by (besides its id, which never changes).
ID_LIKE = ("user_name", "external_id", "employee_number")


def org_is_paid(db: Session | Connection, org_id: uuid.UUID) -> bool:
    if isinstance(db, Session):  # from its identity map after the first (a re-sync's users)
        org = db.get(Organization, org_id)
        return org is not None and org.plan == "paid"
    return db.execute(select(Organization.plan).where(Organization.id == org_id)).scalar() == "paid"


def created_kinds(*, paid: bool, active: bool) -> list[str]:
    """The coalesced jobs a new user needs (models/store.py writes them with the row)."""
    # Always the manager pass: the new user may be the manager pending references wait for.
    return [KIND_MANAGERS_ORG, *([KIND_LICENSE_CHECK] if paid and active else [])]


# Jobs written but not published: the organization's coalesced notice job decides every
# waiting notice in one task (a burst of deactivations is one message, not one each); the
# outbox sweep publishes a row left waiting.
UNPUBLISHED = frozenset({KIND_NOTIFY_DEACTIVATED})


@dataclass(frozen=True)
class UpdateJobs:
    """The follow-up jobs of an update, written by the update's own statement (models/store.py)."""

    coalesced: list[str]  # kinds of organization-wide jobs to join or create
    singles: list[tuple[str, str, dict]]  # (kind, dedup key, payload), subject: the user
    check_pending: bool  # a pending group member may name the user (its externalId changed)


def updated_jobs(
    user_id: uuid.UUID, before: dict, after: dict, *, version: int, paid: bool
) -> UpdateJobs:
    """``before``/``after``: the user's indexed columns (``store.user_columns``) before and
    after the update, which makes ``version``."""
    coalesced: list[str] = []
    singles: list[tuple[str, str, dict]] = []

    def single(kind: str, **payload: object) -> None:
        singles.append((kind, f"{kind}:{user_id}:{version}", {"user_id": str(user_id), **payload}))

    if any(before[col] != after[col] for col in ID_LIKE):
        # Its reports linked through an old value are rechecked one by one (rare).
        single(KIND_MANAGERS, ids_changed=True)
    elif before["manager_value"] != after["manager_value"]:
        coalesced.append(KIND_MANAGERS_ORG)
    if before["active"] != after["active"]:
        kinds, notice = activity_jobs(after["active"], paid=paid)
        coalesced.extend(kinds)
        if notice:
            single(KIND_NOTIFY_DEACTIVATED, version=version)
    return UpdateJobs(coalesced, singles, before["external_id"] != after["external_id"])


def activity_jobs(active: bool, *, paid: bool) -> tuple[list[str], bool]:
    """What a change of a user's ``active`` to ``active`` needs: the organization-wide jobs to
    join, and whether the user's deactivation notice (single job ``KIND_NOTIFY_DEACTIVATED``,
    payload ``{"user_id", "version"}``) is written."""
    coalesced = [KIND_LICENSE_CHECK] if paid else []
    if not active:
        coalesced.append(KIND_NOTIFY_DEACTIVATED_ORG)
    return coalesced, not active


def user_deleted(session: Session, user: User, *, paid: bool | None = None) -> list[int]:
    """The jobs a deletion needs (its reports released, the license check); returns their
    ids. ``paid`` whether the organization is on the paid plan, if the caller knows (else it
    is read)."""
    if paid is None:
        paid = org_is_paid(session, user.org_id)
    managers.release_reports(session, user)
    return enqueue_coalesced(session, user.org_id, KIND_LICENSE_CHECK) if paid else []
