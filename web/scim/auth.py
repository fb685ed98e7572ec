"""Bearer token -> organization. Every failure is the same 401, whether or not the org exists."""

from __future__ import annotations

import uuid

from flask import g, request
from sqlalchemy.orm import Session

from models import Organization
from models.tokens import find_token
from web.scim.errors import Forbidden, Unauthorized


def authenticate(session: Session, org_id: str) -> Organization:
    """Check the Authorization header against ``org_id``'s live tokens; return the org."""
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw or len(raw) > 512:
        raise Unauthorized()
    try:
        org_uuid = uuid.UUID(org_id)
    except ValueError:
        raise Unauthorized() from None
    found = find_token(session, org_uuid, raw)
    if found is None:
        raise Unauthorized()
    token, org = found
    g.token_prefix = token.prefix
    # last_used is written with the audit row, after the response
    g.token_use = (token.id, token.last_used)
    if org.plan != "paid":
        raise Forbidden("SCIM provisioning requires a paid plan")
    if not org.scim_enabled:
        raise Forbidden("SCIM provisioning is disabled for this organization")
    return org
