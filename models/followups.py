"""Which follow-up jobs a user write needs (manager resolution, license check, mail).

Called by the store inside the write's transaction; returns the ids of the jobs it wrote.
The job kinds and their tasks live in tasks/ (tasks/outbox.py maps kind -> task name).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from models.user import User


def user_written(
    session: Session, user: User, *, event: str, previous: dict | None = None
) -> list[int]:
    """``event`` is "created", "updated" or "deleted"; ``previous`` the columns before an update
    (None on create). Returns the ids of jobs written."""
    return []
