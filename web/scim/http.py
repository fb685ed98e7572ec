"""Request and response plumbing of the SCIM API: media types, JSON bodies, ETags."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import Response, current_app, request

from models import jsoncodec
from web.scim.errors import InvalidSyntax, InvalidValue, PreconditionFailed, UnsupportedMediaType

SCIM_MEDIA_TYPE = "application/scim+json"
ACCEPTED_MEDIA_TYPES = ("application/scim+json", "application/json")
MAX_JSON_DEPTH = 32


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise InvalidSyntax(f"Duplicate key '{key}' in JSON object")
        out[key] = value
    return out


# PostgreSQL text cannot hold NUL, and a lone surrogate (valid as a JSON escape) is not Unicode:
# both are refused here with a SCIM error instead of failing in the database.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _check_shape(value: Any, limit: int) -> None:
    """Refuse nesting deeper than ``limit`` and strings (keys too) that cannot be stored."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise InvalidValue(f"Request body is nested deeper than {limit} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if _UNSTORABLE.search(key):
                    raise InvalidValue("Attribute names may not contain NUL or lone surrogates")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str) and _UNSTORABLE.search(item):
            raise InvalidValue("Strings may not contain NUL characters or lone surrogates")


def _no_constant(name: str) -> Any:
    raise InvalidSyntax(f"{name} is not JSON")  # Python's json accepts NaN and Infinity


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise InvalidValue(f"Number {text[:40]} is out of range")
    return number


def json_body() -> dict:
    """The request's JSON object, after checking media type, syntax and shape."""
    mimetype = (request.mimetype or "").lower()
    if mimetype not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMediaType(
            "Content-Type must be application/scim+json or application/json"
        )
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: werkzeug raises 413
    try:
        text = raw.decode("utf-8")
        body = json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except (InvalidSyntax, InvalidValue):
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidSyntax("Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidSyntax("Request body must be a JSON object")
    _check_shape(body, MAX_JSON_DEPTH)
    return body


def etag(version: int) -> str:
    return f'W/"{version}"'


def check_if_match(current_version: int) -> int | None:
    """Enforce If-Match (RFC 7644 §3.14); return the version the client asserted, if any."""
    header = request.headers.get("If-Match")
    if not header:
        return None
    tags = [t.strip() for t in header.split(",")]
    if "*" in tags:
        return current_version
    wanted = etag(current_version)
    if not any(t == wanted or t == wanted[2:] for t in tags):
        raise PreconditionFailed(
            f"If-Match {header} does not match the current version {wanted}",
        )
    return current_version


def if_none_match_hits(version: int) -> bool:
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag(version) in tags or etag(version)[2:] in tags


def scim_response(
    body: dict | None,
    status: int = 200,
    *,
    version: int | None = None,
    location: str | None = None,
) -> Response:
    data = b"" if body is None else jsoncodec.dumps(body)
    response = current_app.response_class(data, status=status, mimetype=SCIM_MEDIA_TYPE)
    if body is not None:
        response.headers["Content-Type"] = f"{SCIM_MEDIA_TYPE}; charset=utf-8"
    if version is not None:
        response.headers["ETag"] = etag(version)
    if location:
        response.headers["Location"] = location
    return response
