"""Where the pages of an import end, so that the next page starts there instead of skipping.

An IdP's import (Okta's) asks for startIndex=1, 101, 201... over every user, without a filter
or a sort. With OFFSET, PostgreSQL walks past every skipped row, so the k-th page costs k
times the first and an import grows with the square of the organization. Instead each such
page records in Redis the insertion sequence (``seq``) of its last user under its position;
the next page, whichever web process serves it, asks for the users after that seq: an index
range scan, the same cost on every page.

A recorded position is exact only while the organization has the users it was recorded from:
its value carries the organization's count of user inserts and deletes (``store.user_tally``)
beside the seq. The page reads the count in its own statement; when it differs from the
recorded one, a user was added or removed since, and the page is read again with OFFSET.
Redis away: every page uses OFFSET.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

import redis

from web import redisconn

KEY_PREFIX = "wt:pos:"
# An import walks its pages within minutes; a position is worth nothing after it.
TTL_SECONDS = 900
WITHOUT = "import pages skip rows with OFFSET"


def _key(org_id: uuid.UUID, position: int) -> str:
    return f"{KEY_PREFIX}{org_id}:{position}"


@dataclass(frozen=True)
class Position:
    changes: int  # the organization's count of user inserts and deletes when recorded
    seq: int  # the seq of the user at the position then


def seq_before(url: str, org_id: uuid.UUID, position: int) -> Position | None:
    """Where the user at index ``position`` (1-based) of ``org_id``'s users in insertion order
    was when a page recorded it; the caller checks ``changes`` against the current count."""
    if not redisconn.available(url):
        return None
    try:
        value = redisconn.client(url).get(_key(org_id, position))
    except redis.RedisError as exc:
        redisconn.failed(url, exc, WITHOUT)
        return None
    if value is None:
        return None
    changes, _, seq = cast(bytes, value).partition(b":")
    try:
        return Position(int(changes), int(seq))
    except ValueError:  # not written by ``remember``: as if nothing were recorded
        return None


def remember(url: str, org_id: uuid.UUID, position: int, changes: int, seq: int) -> None:
    """Record that the user at index ``position`` has ``seq`` while the organization's count of
    user inserts and deletes is ``changes`` (see ``seq_before``)."""
    if not redisconn.available(url):
        return
    try:
        redisconn.client(url).set(_key(org_id, position), f"{changes}:{seq}", ex=TTL_SECONDS)
    except redis.RedisError as exc:
        redisconn.failed(url, exc, WITHOUT)
