"""Per-token SCIM rate limits in Redis (GCRA: a token bucket in one key, atomic in Lua).

A token may send ``rate`` requests per second on average and bursts of ``rate * burst_seconds``;
over that it gets 429 with Retry-After. The rate is the organization's ``rate_limit`` if set,
else WORKTEAM_RATE_LIMIT. Redis is shared by every web process, so the limit holds for the
whole deployment, not per worker.

Redis down must not stop provisioning (SCIM writes go through the outbox without it): the
limiter fails open, and after a failure it does not try Redis again for a few seconds so that
requests stay fast while it is away.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import redis
from flask import current_app, g

from web.scim.errors import TooManyRequests

log = logging.getLogger("workteam.ratelimit")

KEY_PREFIX = "wt:rl:"
RETRY_AFTER_FAILURE_SECONDS = 5.0

# GCRA. KEYS[1]: the token's key. ARGV: interval (µs per request), tolerance (µs of burst).
# Returns {allowed, microseconds until the next request would be allowed}. Redis's own clock,
# so web processes on machines with skewed clocks agree.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, tat - now - tolerance}
end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
return {1, 0}
"""

_clients: dict[str, redis.Redis] = {}
_scripts: dict[str, Any] = {}  # URL -> registered GCRA script (EVALSHA; EVAL only if unknown)
_down_until: dict[str, float] = {}  # Redis URL -> monotonic time before which it is not tried


def _client(url: str) -> redis.Redis:
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.2, socket_timeout=0.2)
        _clients[url] = client
    return client


def allow(key: str, rate: float, burst_seconds: float, url: str) -> tuple[bool, float]:
    """Take one request from ``key``'s bucket. Returns (allowed, seconds to wait if not)."""
    if rate <= 0 or time.monotonic() < _down_until.get(url, 0.0):
        return True, 0.0
    interval = 1_000_000 / rate
    tolerance = max(interval * rate * burst_seconds - interval, 0)
    try:
        script = _scripts.get(url)
        if script is None:
            script = _scripts[url] = _client(url).register_script(_GCRA)
        allowed, wait_us = script(keys=[KEY_PREFIX + key], args=[int(interval), int(tolerance)])
    except redis.RedisError as exc:
        _down_until[url] = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
        log.warning("rate limiter: Redis unavailable, not limiting (%s)", type(exc).__name__)
        return True, 0.0
    return bool(allowed), int(wait_us) / 1_000_000


def check() -> None:
    """Before-request hook of the SCIM blueprint, after authentication: raise 429 when the
    token is over its organization's rate."""
    org = g.get("org")
    token_use = g.get("token_use")
    if org is None or token_use is None:  # public discovery: no token to count against
        return
    config = current_app.config
    rate = org.rate_limit if org.rate_limit is not None else config["RATE_LIMIT"]
    allowed, wait = allow(
        str(token_use[0]), float(rate), config["RATE_BURST_SECONDS"], config["RATE_LIMIT_REDIS_URL"]
    )
    if not allowed:
        retry_after = max(1, math.ceil(wait))
        raise TooManyRequests(
            f"Too many requests: this token may send {rate:g} per second; "
            f"retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
