"""Helpers shared by the worker tests (outbox, managers, licenses, mail)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask
from sqlalchemy import func, select, update

from models.outbox import Job, SentMail
from models.user import User
from tests.conftest import ScimClient

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
WT = "urn:workteam:params:scim:schemas:extension:workteam:2.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


def person(scim: ScimClient, name: str | None = None, *, manager: str | None = None,
           **extra: Any) -> dict:
    """Create a user with a unique primary email (the userName)."""
    user_name = f"{name or 'u'}-{uuid.uuid4().hex[:8]}@example.com"
    body: dict[str, Any] = {"schemas": [CORE, ENT],
                            "emails": [{"value": user_name, "primary": True}]}
    ent = dict(extra.pop("enterprise", {}))
    if manager is not None:
        ent["manager"] = {"value": manager}
    if ent:
        body[ENT] = ent
    return scim.create_user(user_name, **body, **extra)


def make_admin(app: Flask, user_id: str) -> None:
    with app.extensions["db.sessions"]() as session:
        session.execute(update(User).where(User.id == uuid.UUID(user_id)).values(is_admin=True))
        session.commit()


def set_active(scim: ScimClient, user_id: str, active: bool) -> None:
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "path": "active", "value": active}]}
    response = scim.patch(f"/Users/{user_id}", patch)
    assert response.status_code == 200, response.get_json()


def license_counts(app: Flask, org_id: uuid.UUID) -> dict[str, int]:
    with app.extensions["db.sessions"]() as session:
        rows = session.execute(
            select(User.license_state, func.count())
            .where(User.org_id == org_id)
            .group_by(User.license_state)
        ).all()
    return {state: n for state, n in rows}


def jobs_of(app: Flask, org_id: uuid.UUID, kind: str | None = None) -> list[Job]:
    with app.extensions["db.sessions"]() as session:
        stmt = select(Job).where(Job.org_id == org_id).order_by(Job.id)
        if kind:
            stmt = stmt.where(Job.kind == kind)
        return list(session.scalars(stmt))


def mails_of(app: Flask, org_id: uuid.UUID) -> list[SentMail]:
    with app.extensions["db.sessions"]() as session:
        return list(
            session.scalars(select(SentMail).where(SentMail.org_id == org_id).order_by(SentMail.id))
        )


def all_jobs_settled(app: Flask, org_id: uuid.UUID) -> bool:
    return all(j.state in ("done", "failed") for j in jobs_of(app, org_id))
