"""JSON in and out of the hot paths with orjson (a page of 100 users decodes 200 jsonb values
and encodes one large body), falling back to the standard library for what orjson refuses:
integers beyond 64 bits (SCIM bodies may carry them; Python's json keeps them exact)."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        if isinstance(data, memoryview):
            data = bytes(data)
        return json.loads(data)  # raises the usual error if it is not JSON at all


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as ``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError: a big integer, a non-string key
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def clone(obj: Any) -> Any:
    """A deep copy of JSON data (a stored resource): an orjson round trip, several times
    cheaper than ``copy.deepcopy``; deepcopy for what orjson cannot encode."""
    try:
        return orjson.loads(orjson.dumps(obj))
    except TypeError:  # orjson.JSONEncodeError: a big integer, a non-string key
        return copy.deepcopy(obj)
