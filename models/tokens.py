"""SCIM bearer tokens: 256 random bits, shown once, stored as a SHA-256 hash with a prefix."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from itertools import chain
from typing import Any

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session

from models.db import utcnow
from models.organization import Organization, ScimToken

TOKEN_PREFIX = "wtscim_"  # noqa: S105 (a label, not a secret)
VISIBLE_PREFIX_LENGTH = len(TOKEN_PREFIX) + 6
# last_used is written at most this often per token, so reads do not turn into writes.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)
# session.info key: ids of organizations whose tokens or SCIM settings the transaction
# changed. The web side renews their credentials generation after the commit (auth cache).
CREDENTIALS_CHANGED = "workteam.credentials_changed"
# What authentication reads of an organization.
_AUTH_COLUMNS = ("plan", "scim_enabled", "rate_limit")


def credentials_changed(session: Session, org_id: uuid.UUID) -> None:
    session.info.setdefault(CREDENTIALS_CHANGED, set()).add(org_id)


@event.listens_for(Session, "after_flush")
def _note_credential_changes(session: Session, _context: Any) -> None:
    """Every ORM change of a token, or of what authentication reads of an organization, is
    noted; Core statements on them call ``credentials_changed`` themselves."""
    for obj in chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, ScimToken):
            credentials_changed(session, obj.org_id)
        elif isinstance(obj, Organization):
            state = inspect(obj)
            if obj in session.dirty and not any(
                state.attrs[name].history.has_changes() for name in _AUTH_COLUMNS
            ):
                continue
            credentials_changed(session, obj.id)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(
    session: Session, org: Organization, *, overlap: dt.timedelta | None = None
) -> tuple[str, ScimToken]:
    """Make a new token for ``org`` and revoke the current ones (at once, or after ``overlap``
    so an admin can update the IdP without downtime). Returns the raw token: shown once."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(
        update(ScimToken)
        .where(ScimToken.org_id == org.id, ScimToken.revoked_at.is_(None))
        .values(revoked_at=now + (overlap or dt.timedelta(0)))
    )
    credentials_changed(session, org.id)
    token = ScimToken(org_id=org.id, token_hash=hash_token(raw), prefix=raw[:VISIBLE_PREFIX_LENGTH])
    session.add(token)
    session.flush()
    return raw, token


def find_token(
    session: Session, org_id: uuid.UUID, raw: str
) -> tuple[ScimToken, Organization] | None:
    """The live token of ``org_id`` whose hash matches, with its organization (one query), or
    None. Lookup by hash: the secret is never compared byte by byte, so response time says
    nothing about it."""
    row = session.execute(
        select(ScimToken, Organization)
        .join(Organization, Organization.id == ScimToken.org_id)
        .where(ScimToken.token_hash == hash_token(raw), ScimToken.org_id == org_id)
    ).first()
    if row is None:
        return None
    token, org = row
    if token.revoked_at is not None and token.revoked_at <= utcnow():
        return None
    return token, org


def touch(session: Session, token_id: uuid.UUID, last_used: dt.datetime | None) -> None:
    """Record a use of the token (read with ``last_used``), at most once a minute."""
    now = utcnow()
    if last_used is None or now - last_used > LAST_USED_RESOLUTION:
        session.execute(update(ScimToken).where(ScimToken.id == token_id).values(last_used=now))


def current_token(session: Session, org_id: uuid.UUID) -> ScimToken | None:
    return session.scalar(
        select(ScimToken)
        .where(ScimToken.org_id == org_id, ScimToken.revoked_at.is_(None))
        .order_by(ScimToken.created.desc())
        .limit(1)
    )
