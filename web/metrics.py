"""Prometheus metrics: per-request counters and latency, and database gauges at scrape time.

Several gunicorn workers: set PROMETHEUS_MULTIPROC_DIR (an empty directory, emptied at each
deploy) in the environment before gunicorn starts; each worker then writes its counters there
and /metrics, served by any worker, adds up every worker's files. Without it (one process, or
tests) the process's own registry is served.

State that lives in the database (outbox backlog, failed jobs, license and manager states) is
not tracked per process: a collector counts it with a few GROUP BY queries when scraped, cached
for a few seconds so that several Prometheus servers do not multiply the load.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Iterator

from flask import Flask, Request, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("workteam.metrics")

REQUESTS = Counter(
    "workteam_http_requests",
    "HTTP requests answered, by route template, method, status and organization",
    ["route", "method", "status", "org"],
)
LATENCY = Histogram(
    "workteam_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

_QUERIES = {
    # Two partial indexes, one per branch: done jobs are never read (migration 0012).
    "jobs": "SELECT kind, state, count(*) FROM jobs WHERE state = 'pending' GROUP BY kind, state "
    "UNION ALL SELECT kind, state, count(*) FROM jobs WHERE state IN ('running', 'failed') "
    "GROUP BY kind, state",
    "oldest": "SELECT coalesce(extract(epoch FROM now() - min(created)), 0) FROM jobs "
    "WHERE state = 'pending'",
    # No statement reads every user (a million users took 140-280 ms by license state and
    # 490-880 by manager state, and more users would pass the 2 s timeout): users, licensed
    # and waiting users come from the tally (migrations 0008, 0010, 0013), the manager
    # problems from their partial index (migration 0011).
    "license": "SELECT coalesce(sum(users), 0), coalesce(sum(licensed), 0), "
    "coalesce(sum(waiting), 0) FROM user_tallies",
    "manager": "SELECT manager_state, count(*) FROM users "
    "WHERE manager_state IN ('pending', 'invalid') GROUP BY manager_state",
}


def _license_states(conn: Connection) -> list[tuple[str, int]]:
    """Users by license state, all organizations together: 'none' is the rest."""
    users, licensed, waiting = conn.execute(text(_QUERIES["license"])).one()
    return [("licensed", int(licensed)), ("unlicensed", int(waiting)),
            ("none", int(users) - int(licensed) - int(waiting))]


class DatabaseCollector:
    """Gauges counted in PostgreSQL when scraped (all organizations together)."""

    def __init__(self, engine: Engine, cache_seconds: float) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, dict] | None = None

    def _counts(self) -> dict:
        with self._lock:
            now = time.monotonic()
            if self._cached and now - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            # One snapshot: every gauge of a scrape describes the same moment.
            with self.engine.connect().execution_options(
                    isolation_level="REPEATABLE READ") as conn:
                conn.execute(text("SET LOCAL statement_timeout = 2000"))
                counts = {
                    "jobs": [tuple(r) for r in conn.execute(text(_QUERIES["jobs"]))],
                    "oldest": float(conn.execute(text(_QUERIES["oldest"])).scalar() or 0),
                    "license": _license_states(conn),
                    "manager": list({"pending": 0, "invalid": 0, **dict(
                        conn.execute(text(_QUERIES["manager"])).all())}.items()),
                }
                conn.rollback()
            self._cached = (now, counts)
            return counts

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "workteam_metrics_database_up", "1 if the database gauges below could be counted"
        )
        try:
            counts = self._counts()
        except Exception as exc:  # a scrape must answer even with the database away
            log.warning("metrics: database gauges unavailable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily(
            "workteam_jobs",
            "Outbox jobs not done, by kind and state (pending = backlog, failed = gave up)",
            labels=["kind", "state"],
        )
        for kind, state, n in counts["jobs"]:
            jobs.add_metric([kind, state], n)
        yield jobs
        yield GaugeMetricFamily(
            "workteam_outbox_oldest_pending_seconds",
            "Age of the oldest pending outbox job",
            value=counts["oldest"],
        )
        for name, key, doc in (
            ("workteam_users_by_license_state", "license", "Users by license state"),
            ("workteam_users_by_manager_state", "manager",
             "Users whose manager reference is pending or invalid, by state"),
        ):
            family = GaugeMetricFamily(name, doc, labels=["state"])
            for state, n in counts[key]:
                family.add_metric([state], n)
            yield family


def _route(req: Request) -> str:
    # The rule template, never the raw path: unmatched paths would make unbounded label values.
    return req.url_rule.rule if req.url_rule else "unmatched"


def _observe(response: Response) -> Response:
    # Behind the proxies once: each proxy access costs ~1-2 µs.
    req, ctx = request._get_current_object(), g._get_current_object()  # type: ignore[attr-defined]
    if req.path == "/metrics":
        return response
    route = _route(req)
    org_id = ctx.get("org_id")
    REQUESTS.labels(route, req.method, str(response.status_code), str(org_id or "")).inc()
    started = ctx.get("started")
    if started is not None:
        LATENCY.labels(route, req.method).observe(time.perf_counter() - started)
    return response


def metrics_view() -> Response:
    token = current_app.config.get("METRICS_TOKEN") or ""
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.encode()):
            return Response("unauthorized\n", 401, {"WWW-Authenticate": "Bearer"})
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    database = CollectorRegistry()
    database.register(current_app.extensions["metrics.db"])
    return Response(body + generate_latest(database), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.extensions["metrics.db"] = DatabaseCollector(
        app.extensions["db.engine"], app.config["METRICS_DB_CACHE_SECONDS"]
    )
    app.after_request(_observe)
    app.add_url_rule("/metrics", "metrics", metrics_view)
