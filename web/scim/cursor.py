"""RFC 9865 cursors: opaque, signed, expiring tokens that name a position in one query.

A cursor holds either a keyset position (the insertion sequence of the last row seen: a page
costs the same at the millionth user as at the first) or, when the client sorts by an
attribute, an offset. It is bound to the query it came from (organization, filter, sort), so a
cursor cannot be replayed against another query.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from web.scim.errors import ExpiredCursor, InvalidCursor

SALT = "workteam.scim.cursor"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def fingerprint(*parts: Any) -> str:
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode(position: dict, query: str) -> str:
    return _serializer().dumps({**position, "q": query})


def decode(token: str, query: str) -> dict:
    """The position in ``token``; InvalidCursor if forged, malformed or for another query,
    ExpiredCursor once older than the advertised cursorTimeout."""
    timeout = current_app.config.get("SCIM_CURSOR_TIMEOUT", 3600)
    try:
        data = _serializer().loads(token, max_age=timeout)
    except SignatureExpired:
        raise ExpiredCursor(f"The cursor has expired (cursors live {timeout} seconds)") from None
    except BadSignature:
        raise InvalidCursor("The cursor is not one this service issued") from None
    if not isinstance(data, dict) or data.get("q") != query:
        raise InvalidCursor("The cursor belongs to a different query")
    return data
