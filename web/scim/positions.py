"""Where the pages of an import end, so that the next page starts there instead of skipping.

An IdP's import (Okta's) asks for startIndex=1, 101, 201... over every user, without a filter
or a sort. With OFFSET, PostgreSQL walks past every skipped row, so the k-th page costs k
times the first and an import grows with the square of the organization. Instead each such
page records in Redis the insertion sequence (``seq``) of its last user under its position;
the next page, whichever web process serves it, asks for the users after that seq: an index
range scan, the same cost on every page.

A recorded position is exact only while the organization has the users it was recorded from:
the key carries the organization's count of user inserts and deletes (``store.user_tally``),
read before the page's rows, so a user added or removed since makes the key miss and the page
falls back to OFFSET. Redis away: every page uses OFFSET.
"""

from __future__ import annotations

import uuid

import redis

from web import redisconn

KEY_PREFIX = "wt:pos:"
# An import walks its pages within minutes; a position is worth nothing after it.
TTL_SECONDS = 900
WITHOUT = "import pages skip rows with OFFSET"


def _key(org_id: uuid.UUID, changes: int, position: int) -> str:
    return f"{KEY_PREFIX}{org_id}:{changes}:{position}"


def seq_before(url: str, org_id: uuid.UUID, changes: int, position: int) -> int | None:
    """The seq of the user at index ``position`` (1-based) of ``org_id``'s users in insertion
    order, if a page recorded it while the organization's change count was ``changes``."""
    if not redisconn.available(url):
        return None
    try:
        value = redisconn.client(url).get(_key(org_id, changes, position))
    except redis.RedisError as exc:
        redisconn.failed(url, exc, WITHOUT)
        return None
    return int(value) if value is not None else None


def remember(url: str, org_id: uuid.UUID, changes: int, position: int, seq: int) -> None:
    """Record that the user at index ``position`` has ``seq`` (see ``seq_before``)."""
    if not redisconn.available(url):
        return
    try:
        redisconn.client(url).set(_key(org_id, changes, position), seq, ex=TTL_SECONDS)
    except redis.RedisError as exc:
        redisconn.failed(url, exc, WITHOUT)
