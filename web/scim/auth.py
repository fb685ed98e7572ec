"""Bearer token -> organization. Every failure is the same 401, whether or not the org exists.

A checked token is cached in the process for CACHE_SECONDS, so a lookup by an IdP does not
read the token and its organization on every request. Revocation, disabling SCIM and plan or
rate changes still take effect on the next request in every process: each organization has a
*credentials generation* in Redis, renewed after every commit that changes its tokens or its
SCIM settings (``watch_credentials``), and the rate limiter's round trip reads it; a cached
entry of another generation is dropped. When Redis cannot be read, nothing is cached and every
request reads the database. A generation that could not be renewed (Redis away at that moment)
leaves old entries alive for at most CACHE_SECONDS.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app, g, request
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from models.db import utcnow
from models.tokens import CREDENTIALS_CHANGED, find_token, hash_token
from web import ratelimit
from web.scim.errors import Forbidden, Unauthorized

CACHE_SECONDS = 10.0
CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class AuthenticatedOrg:
    """What a SCIM request needs of its organization and token (views read ``id``)."""

    id: uuid.UUID
    plan: str
    scim_enabled: bool
    rate_limit: int | None
    token_id: uuid.UUID
    token_prefix: str
    token_last_used: dt.datetime | None
    generation: str | None
    expires: float  # time.monotonic() after which the entry is read again


_cache: dict[tuple[uuid.UUID, str], AuthenticatedOrg] = {}


def authenticate(session: Callable[[], Session], org_id: str) -> AuthenticatedOrg:
    """Check the Authorization header against ``org_id``'s live tokens and take the request
    from the token's rate limit; return the organization. ``session`` gives the request's
    session, asked for only when the credential is not cached (a lookup then needs none)."""
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw or len(raw) > 512:
        raise Unauthorized()
    try:
        org_uuid = uuid.UUID(org_id)
    except ValueError:
        raise Unauthorized() from None
    key = (org_uuid, hash_token(raw))
    cached = _cache.get(key)
    org: AuthenticatedOrg | None = None
    admission = None
    if cached is not None and cached.expires > time.monotonic():
        admission = _admit(cached)
        if admission.generation is not None and admission.generation == cached.generation:
            org = cached  # else changed (or unknown): read the database again
    if org is None:
        # The generation is read before the token: a change committed after this read
        # renews it, so an entry cached from a stale read is never taken for current.
        url = current_app.config["RATE_LIMIT_REDIS_URL"]
        db = session()
        try:
            org = _load(db, key, raw, ratelimit.generation(org_uuid, url))
        finally:
            # Nothing read here is kept: the connection goes back to the pool, so a request
            # that goes on with one statement on its autocommit connection (a lookup, a
            # create) never holds two (sixteen threads of one process then starved its pool).
            db.close()
        if cached is not None and _rate(cached) != _rate(org):
            admission = None  # taken at the old rate: take it again at the new one
    ctx = g._get_current_object()  # once: a proxy access costs ~1-2 µs
    ctx.token_prefix = org.token_prefix
    # last_used is written with the audit row, after the response
    ctx.token_use = (org.token_id, org.token_last_used)
    if org.plan != "paid":
        raise Forbidden("SCIM provisioning requires a paid plan")
    if not org.scim_enabled:
        raise Forbidden("SCIM provisioning is disabled for this organization")
    if admission is None:
        admission = _admit(org)
    if not admission.allowed:
        raise ratelimit.refuse(_rate(org), admission.wait)
    return org


def _rate(org: AuthenticatedOrg) -> float:
    return float(org.rate_limit if org.rate_limit is not None else current_app.config["RATE_LIMIT"])


def _admit(org: AuthenticatedOrg) -> ratelimit.Admission:
    config = current_app.config
    return ratelimit.admit(str(org.token_id), org.id, _rate(org), config["RATE_BURST_SECONDS"],
                           config["RATE_LIMIT_REDIS_URL"])


def _load(
    session: Session, key: tuple[uuid.UUID, str], raw: str, generation: str | None
) -> AuthenticatedOrg:
    """Read the token (``key``: organization id, token hash) and cache what was read."""
    found = find_token(session, key[0], raw)
    if found is None:
        _cache.pop(key, None)
        raise Unauthorized()
    token, row = found
    lifetime = CACHE_SECONDS
    if token.revoked_at is not None:  # rotated, still in its overlap window
        lifetime = min(lifetime, (token.revoked_at - utcnow()).total_seconds())
    org = AuthenticatedOrg(
        id=row.id, plan=row.plan, scim_enabled=row.scim_enabled, rate_limit=row.rate_limit,
        token_id=token.id, token_prefix=token.prefix, token_last_used=token.last_used,
        generation=generation, expires=time.monotonic() + lifetime,
    )
    if generation is not None:
        if len(_cache) >= CACHE_MAX_ENTRIES:
            _cache.clear()
        _cache[key] = org
    return org


def watch_credentials(sessions: sessionmaker, redis_url: str) -> None:
    """After a commit of ``sessions`` that changed tokens or SCIM settings of organizations
    (noted by models.tokens), renew their generations so every process's cache drops them."""

    def _renew(session: Session) -> None:
        changed: Any = session.info.pop(CREDENTIALS_CHANGED, None)
        if changed:
            ratelimit.renew_generations(changed, redis_url)

    def _forget(session: Session) -> None:
        session.info.pop(CREDENTIALS_CHANGED, None)

    event.listen(sessions, "after_commit", _renew)
    event.listen(sessions, "after_rollback", _forget)
