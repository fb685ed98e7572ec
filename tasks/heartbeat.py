"""Worker heartbeat for the admin page's "no worker is running" banner.

Mechanism: Celery's own worker heartbeat (the ``Heart`` timer, every 2 s in each worker's main
process while task events are on, which ``web/celery_ext.py`` sets) fires the
``heartbeat_sent`` signal; this module answers it by writing the time to Redis, one key per
queue the worker consumes: ``workteam:heartbeat:<queue>`` (at most every ``WRITE_EVERY`` s,
expiring after ``TTL``). The web reads the key of its default queue: a worker that is alive and
consumes the queue the web publishes to. Per queue, so test runs with their own queues and
separate deployments sharing a Redis do not vouch for each other.

No beat and no broker round trip are involved, so the banner also appears when beat is down
only if the workers are; ``celery inspect ping`` would cost the page a broadcast and a wait.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from celery import current_app as current_celery
from celery.signals import heartbeat_sent, worker_ready

if TYPE_CHECKING:
    import redis

log = logging.getLogger("workteam.heartbeat")

KEY_PREFIX = "workteam:heartbeat:"
WRITE_EVERY = 10.0
TTL = 600

_client = None
_last_write = 0.0


def key_for(queue: str) -> str:
    return KEY_PREFIX + queue


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        import redis

        url = current_celery.conf.result_backend or current_celery.conf.broker_url
        _client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    return _client


def _consumed_queues() -> list[str]:
    queues = current_celery.amqp.queues
    active = queues.consume_from or {}
    return sorted(active) or [current_celery.conf.task_default_queue]


def beat(force: bool = False) -> None:
    global _last_write
    now = time.time()
    if not force and now - _last_write < WRITE_EVERY:
        return
    _last_write = now
    try:
        pipe = _redis().pipeline(transaction=False)
        for queue in _consumed_queues():
            pipe.set(key_for(queue), f"{now:.3f}", ex=TTL)
        pipe.execute()
    except Exception:  # Redis down: the banner appears, which is then true enough
        log.warning("could not write the worker heartbeat", exc_info=True)


@worker_ready.connect
def _on_ready(**_: object) -> None:
    beat(force=True)


@heartbeat_sent.connect
def _on_heartbeat(**_: object) -> None:
    beat()


def last_seen(client: redis.Redis, queue: str) -> float | None:
    """Seconds since the epoch of the last heartbeat of a worker consuming ``queue``."""
    raw = client.get(key_for(queue))
    return float(raw) if raw else None
