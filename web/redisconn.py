"""The web processes' Redis clients: one per URL, and a few seconds' rest after a failure.

Redis holds what makes requests fairer or faster (rate limits, credentials generations, page
positions), never what a SCIM write needs: callers go on without it when it fails, and it is
not tried again for a few seconds, so that requests stay fast while it is away.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

log = logging.getLogger("workteam.redis")

RETRY_AFTER_FAILURE_SECONDS = 5.0

_clients: dict[str, redis.Redis] = {}
_own = threading.local()  # .clients: URL -> this thread's single-connection client
down_until: dict[str, float] = {}  # URL -> monotonic time before which it is not tried


def _new_client(url: str, **options: object) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=0.2, socket_timeout=0.2, **options)


def client(url: str) -> redis.Redis:
    found = _clients.get(url)
    if found is None:
        found = _clients[url] = _new_client(url)
    return found


def own_client(url: str) -> redis.Redis:
    """This thread's client of ``url``, on a connection of its own: for a command every
    request sends (the rate limit), which then skips the shared pool's lock, checkout and
    checkin (with redis-py's Script object, a third of the command's client CPU: 70 -> 47 µs
    measured). One connection per thread that uses it (4 per gunicorn worker here)."""
    clients = getattr(_own, "clients", None)
    if clients is None:
        clients = _own.clients = {}
    found = clients.get(url)
    if found is None:
        found = clients[url] = _new_client(url, single_connection_client=True)
    return found


def available(url: str) -> bool:
    return time.monotonic() >= down_until.get(url, 0.0)


def failed(url: str, exc: Exception, consequence: str) -> None:
    """Record a failure of ``url``; ``consequence`` says what goes without it meanwhile."""
    down_until[url] = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
    log.warning("Redis unavailable (%s): %s", type(exc).__name__, consequence)
