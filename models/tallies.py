"""The tally of users checked against the users it counts.

``user_tallies`` (migrations 0008, 0010, 0013) counts each organization's users, the licensed
and the waiting ones: its triggers count inserts and deletes, and the license check, the only
code that changes ``license_state``, appends what it changed. Nothing else corrects it, and the
license check reads its seats taken from it, so a count that drifted (a statement run by hand,
a future writer of ``license_state`` that forgets its delta) would stay wrong, and seats with
it. ``recount`` compares the tally with a count of the users and appends the difference.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.licensing import lock_org

# One statement, so the count and the tally come from one snapshot: every writer changes users
# and appends its delta in one transaction, so in a snapshot both are there or neither is, and
# the difference is exact whatever commits meanwhile (the tally's function, migration 0016, is
# STABLE: it reads with the statement's snapshot). The count reads ix_users_org_license
# (org_id, license_state, seq) alone once the table is vacuumed.
_DRIFT = text(
    """
    SELECT c.users - t.users, c.licensed - t.licensed, c.waiting - t.waiting
    FROM (SELECT count(*) AS users,
                 count(*) FILTER (WHERE license_state = 'licensed') AS licensed,
                 count(*) FILTER (WHERE license_state = 'unlicensed') AS waiting
          FROM users WHERE org_id = :org_id) AS c,
         user_tallies_sum(:org_id) AS t
    """
)
_ADD = text("SELECT user_tallies_add(:org_id, :users, :changes, :licensed, :waiting)")


@dataclass(frozen=True)
class Drift:
    """How far the tally was from the users (count minus tally); all zero when it was right."""

    users: int = 0
    licensed: int = 0
    waiting: int = 0

    def __bool__(self) -> bool:
        return bool(self.users or self.licensed or self.waiting)


def recount(session: Session, org_id: uuid.UUID) -> Drift:
    """Count ``org_id``'s users and correct its tally by the difference (no commit); return the
    difference. Holds the organization's lock, as a license check does, so two recounts (or a
    recount and a check) never both correct one difference; SCIM writes do not wait for it."""
    if lock_org(session, org_id) is None:
        return Drift()
    users, licensed, waiting = session.execute(_DRIFT, {"org_id": org_id}).one()
    drift = Drift(int(users), int(licensed), int(waiting))
    if drift:
        # `changes` moves too when the count of users was wrong: an import page's position
        # recorded against it (web/scim/positions.py) is not used again.
        session.execute(_ADD, {"org_id": org_id, "users": drift.users,
                               "changes": abs(drift.users), "licensed": drift.licensed,
                               "waiting": drift.waiting})
    return drift
