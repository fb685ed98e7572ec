"""Per-token SCIM rate limits in Redis (GCRA: a token bucket in one key, atomic in Lua).

A token may send ``rate`` requests per second on average and bursts of ``rate * burst_seconds``;
over that it gets 429 with Retry-After. The rate is the organization's ``rate_limit`` if set,
else WORKTEAM_RATE_LIMIT. Redis is shared by every web process, so the limit holds for the
whole deployment, not per worker.

The check runs inside authentication (web/scim/auth.py), which needs the same round trip to
read the organization's credentials generation.

Redis down must not stop provisioning (SCIM writes go through the outbox without it): the
limiter fails open, and after a failure it does not try Redis again for a few seconds so that
requests stay fast while it is away.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.connection import Connection

from web import redisconn
from web.scim.errors import TooManyRequests

log = logging.getLogger("workteam.ratelimit")

KEY_PREFIX = "wt:rl:"
NOT_LIMITING = "rate limits not applied"

# GCRA. KEYS[1]: the token's key; KEYS[2]: its organization's credentials generation (see
# web/scim/auth.py), read in the same round trip. ARGV: interval (µs per request; 0 = no
# limit), tolerance (µs of burst). Returns {allowed, µs until the next request would be
# allowed, generation or ""}. Redis's own clock, so web processes on machines with skewed
# clocks agree.
_GCRA = """
local generation = redis.call('GET', KEYS[2]) or ''
local interval = tonumber(ARGV[1])
if interval == 0 then return {1, 0, generation} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, tat - now - tolerance, generation}
end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
return {1, 0, generation}
"""

GENERATION_PREFIX = "wt:cred:"
# Longer than any cache entry lives (auth.CACHE_SECONDS): a generation that expires reads as
# "", which no entry cached since the last change can hold.
GENERATION_TTL_SECONDS = 86_400

# Sent as EVALSHA on this thread's own connection (redisconn.own_client), packed once per
# bucket: redis-py's Script object and pooled client were a third of the command's client CPU,
# and packing the same arguments again on every request a third of what was left (measured).
_GCRA_SHA = hashlib.sha1(_GCRA.encode()).hexdigest()  # noqa: S324 (Redis names scripts so)
_PACKED: dict[tuple[str, object, int, int], list[bytes]] = {}
_PACKED_MAX = 10_000


@dataclass(frozen=True)
class Admission:
    allowed: bool
    wait: float  # seconds until a request would be allowed
    generation: str | None  # the organization's credentials generation; None: Redis unknown


def admit(
    key: str, org_id: object, rate: float, burst_seconds: float, url: str
) -> Admission:
    """Take one request from ``key``'s bucket (``rate`` <= 0: no limit) and read ``org_id``'s
    credentials generation, in one round trip. Fails open without Redis."""
    if not redisconn.available(url):
        return Admission(True, 0.0, None)
    interval = int(1_000_000 / rate) if rate > 0 else 0
    tolerance = int(max(1_000_000 * burst_seconds - interval, 0)) if interval else 0
    try:
        connection = redisconn.own_client(url).connection
        assert connection is not None  # a single-connection client holds its one
        packed = _packed(connection, key, org_id, interval, tolerance)
        try:
            allowed, wait_us, generation = _round_trip(connection, packed)
        except redis.exceptions.NoScriptError:  # a restarted or flushed Redis
            connection.send_command("SCRIPT", "LOAD", _GCRA)
            connection.read_response()
            allowed, wait_us, generation = _round_trip(connection, packed)
    except redis.RedisError as exc:
        redisconn.failed(url, exc, NOT_LIMITING)
        return Admission(True, 0.0, None)
    return Admission(bool(allowed), int(wait_us) / 1_000_000, generation.decode())


def _packed(connection: Connection, key: str, org_id: object, interval: int,
            tolerance: int) -> list[bytes]:
    """The bucket's EVALSHA as bytes to send (the same on every request of a token)."""
    bucket = (key, org_id, interval, tolerance)
    found = _PACKED.get(bucket)
    if found is None:
        if len(_PACKED) >= _PACKED_MAX:
            _PACKED.clear()
        found = _PACKED[bucket] = connection.pack_command(
            "EVALSHA", _GCRA_SHA, 2, KEY_PREFIX + key, f"{GENERATION_PREFIX}{org_id}",
            interval, tolerance)
    return found


def _round_trip(connection: Connection, packed: list[bytes]) -> Any:
    """Send ``packed``, read the reply. A connection Redis closed since the last request (a
    restart, its client timeout) fails on the first try and is opened again for the second:
    only a Redis that still cannot be reached makes the limiter rest (redisconn.failed)."""
    try:
        connection.send_packed_command(packed, check_health=False)
        return connection.read_response()
    except redis.ConnectionError:  # the connection is closed now; sending opens a new one
        connection.send_packed_command(packed, check_health=False)
        return connection.read_response()


def generation(org_id: object, url: str) -> str | None:
    """``org_id``'s credentials generation ("" if none was set), None if Redis is away."""
    if not redisconn.available(url):
        return None
    try:
        value = redisconn.client(url).get(f"{GENERATION_PREFIX}{org_id}")
    except redis.RedisError as exc:
        redisconn.failed(url, exc, NOT_LIMITING)
        return None
    return cast(bytes, value).decode() if value is not None else ""


def renew_generations(org_ids: Iterable[object], url: str) -> bool:
    """Give each organization a new credentials generation (after a commit that changed its
    tokens or SCIM settings), so every process drops what it cached. False if Redis failed."""
    try:
        with redisconn.client(url).pipeline(transaction=False) as pipe:
            for org_id in org_ids:
                pipe.set(f"{GENERATION_PREFIX}{org_id}", secrets.token_hex(8),
                         ex=GENERATION_TTL_SECONDS)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("credentials generation not renewed (%s); cached tokens of the "
                    "organization live on for their last seconds", type(exc).__name__)
        return False
    return True


def refuse(rate: float, wait: float) -> TooManyRequests:
    retry_after = max(1, math.ceil(wait))
    return TooManyRequests(
        f"Too many requests: this token may send {rate:g} per second; "
        f"retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )
