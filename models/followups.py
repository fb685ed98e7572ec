"""Which follow-up jobs a user write needs (manager resolution, license check, mail).

Called by the store inside the write's transaction; returns the ids of the jobs it wrote, which
the caller publishes after commit. Dedup keys are (kind, subject, version): a retried or
repeated write of the same version writes no second job. Organization-wide work (resolving
pending manager references, the license check) is one coalesced job per organization. The job
kinds and their tasks are mapped in tasks/outbox.py.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models import managers, memberships
from models.jobs import (
    KIND_LICENSE_CHECK,
    KIND_MANAGERS,
    KIND_MANAGERS_ORG,
    KIND_NOTIFY_DEACTIVATED,
    KIND_NOTIFY_DEACTIVATED_ORG,
    enqueue,
    enqueue_coalesced,
)
from models.organization import Organization
from models.user import User

# The columns a manager reference can name a user by (besides its id, which never changes).
ID_LIKE = ("user_name", "external_id", "employee_number")


def _job(session: Session, user: User, kind: str, key: str, **payload: object) -> int | None:
    return enqueue(
        session,
        user.org_id,
        kind,
        f"{kind}:{user.id}:{key}",
        subject_id=str(user.id),
        payload={"user_id": str(user.id), **payload},
    )


def org_is_paid(db: Session | Connection, org_id: uuid.UUID) -> bool:
    return db.execute(select(Organization.plan).where(Organization.id == org_id)).scalar() == "paid"


def created_kinds(*, paid: bool, active: bool) -> list[str]:
    """The coalesced jobs a new user needs (models/store.py writes them with the row)."""
    # Always the manager pass: the new user may be the manager pending references wait for.
    return [KIND_MANAGERS_ORG, *([KIND_LICENSE_CHECK] if paid and active else [])]


def user_written(
    session: Session,
    user: User,
    *,
    event: str,
    previous: dict | None = None,
    paid: bool | None = None,
) -> list[int]:
    """``event`` is "updated" or "deleted" (a create writes ``created_kinds`` with its row);
    ``previous`` the columns before an update; ``paid`` whether the organization is on the
    paid plan, if the caller knows (else it is read). Returns the ids of jobs written."""
    if paid is None:
        paid = org_is_paid(session, user.org_id)
    version = str(user.version)
    ids: list[int | None] = []
    if event == "updated":
        prev = previous or {}
        ids_changed = any(prev.get(col) != getattr(user, col) for col in ID_LIKE)
        if ids_changed:
            # Its reports linked through an old value are rechecked one by one (rare).
            ids.append(_job(session, user, KIND_MANAGERS, version, ids_changed=True))
        elif prev.get("manager_value") != user.manager_value:
            ids.extend(enqueue_coalesced(session, user.org_id, KIND_MANAGERS_ORG))
        if prev.get("active") != user.active:
            kinds = [KIND_LICENSE_CHECK] if paid else []
            if not user.active:
                # The event's own row is not published: the organization's coalesced job below
                # decides every waiting notice in one task (a burst of deactivations is one
                # message, not one each); the outbox sweep publishes a row left waiting.
                _job(session, user, KIND_NOTIFY_DEACTIVATED, version, version=user.version)
                kinds.append(KIND_NOTIFY_DEACTIVATED_ORG)
            if kinds:
                ids.extend(enqueue_coalesced(session, user.org_id, *kinds))
    elif event == "deleted":
        managers.release_reports(session, user)
        if paid:
            ids.extend(enqueue_coalesced(session, user.org_id, KIND_LICENSE_CHECK))
    # Pending group members naming this user (one indexed EXISTS; a job only if any).
    ids.extend(memberships.pending_followups(session, user, event=event, previous=previous))
    return [i for i in ids if i is not None]
