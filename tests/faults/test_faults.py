"""Faults with the real services, on a private stack (tests/faults/stack.py): PostgreSQL
restarted under load, Redis away, a gunicorn worker SIGKILLed mid-load, 16 clients racing on
the same creates and PATCHes, and /metrics adding up several workers. Each test is bounded in
time and prints its figures (``pytest tests/faults -s``); the README's Reliability section
lists them."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

import psycopg
import pytest

from tests.fixtures_worker import Worker, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SOAK_SECONDS = float(os.environ.get("WORKTEAM_SOAK_SECONDS", "20"))


def figures(name: str, **values) -> None:
    print(f"\nFIGURES {name}: " + json.dumps(values, sort_keys=True))


def run_load(threads: int, seconds: float, work: Callable[[int, int], tuple]) -> list[tuple]:
    """``threads`` threads call ``work(thread, n)`` until ``seconds`` have passed."""
    results: list[tuple] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    failures: list[BaseException] = []

    def loop(thread: int) -> None:
        n = 0
        try:
            while time.monotonic() < stop_at:
                record = work(thread, n)
                with lock:
                    results.append(record)
                n += 1
        except BaseException as exc:  # an assertion in a client thread fails the test
            failures.append(exc)

    pool = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=seconds + 60)
    assert not any(t.is_alive() for t in pool), "a client thread hung"
    if failures:
        raise failures[0]
    return results


def _user(name: str) -> dict:
    return {"schemas": [USER], "userName": name, "displayName": f"Display {name}",
            "name": {"givenName": "Given", "familyName": name},
            "emails": [{"value": name, "primary": True, "type": "work"}]}


def _rows(stack, base: str) -> list[tuple]:
    org_id = base.rsplit("/", 1)[1]
    with psycopg.connect(stack.pg.url) as conn:
        return conn.execute(
            "SELECT user_name, display_name, family_name, primary_email, version FROM users "
            "WHERE org_id = %s", (org_id,)).fetchall()


# ------------------------------------------------------------------------------- PostgreSQL


def test_postgres_restart_under_load(stack, org):
    base, token = org
    http = stack.client(token, timeout=15)
    outage: dict[str, float] = {}

    def create(thread: int, n: int) -> tuple:
        name = f"pg-{thread}-{n}-{uuid.uuid4().hex[:6]}@example.com"
        sent = time.monotonic()
        response = http.request("POST", f"{base}/Users", _user(name))
        if response.status == 503:
            assert response.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
            assert response.headers.get("Retry-After") == "2", response.headers
        return name, response.status, sent, (response.body or {}).get("detail")

    def outage_in_the_middle() -> None:
        time.sleep(2)
        outage["down"] = time.monotonic()
        stack.pg.stop("fast")  # in-flight transactions are rolled back, connections cut
        time.sleep(3)
        stack.pg.start()
        outage["up"] = time.monotonic()

    chaos = threading.Thread(target=outage_in_the_middle)
    chaos.start()
    results = run_load(4, 10, create)
    chaos.join(timeout=60)
    statuses = Counter(status for _, status, _, _ in results)
    assert set(statuses) <= {201, 503}, statuses  # never a 500, never a dropped connection
    assert statuses[503] > 0, "the outage was not noticed: no request fell in the gap"
    recovered_after = min(
        (sent - outage["up"] for _, status, sent, _ in results
         if status == 201 and sent > outage["up"]), default=None)
    assert recovered_after is not None and recovered_after < 3, recovered_after
    late_failures = [r for r in results if r[1] == 503 and r[2] > outage["up"] + 2]
    assert not late_failures, late_failures[:3]  # pool pre-ping: recovery by itself

    rows = {row[0]: row for row in _rows(stack, base)}
    acknowledged = [name for name, status, _, _ in results if status == 201]
    lost = [name for name in acknowledged if name not in rows]
    assert not lost
    half_written = [row for row in rows.values()
                    if row[1] != f"Display {row[0]}" or row[2] != row[0] or row[3] != row[0]]
    assert not half_written
    figures("postgres_restart", requests=len(results), created=statuses[201],
            unavailable_503=statuses[503], errors_500=0, rows_lost=len(lost),
            half_written=len(half_written), outage_seconds=round(outage["up"] - outage["down"], 1),
            first_success_after_restart_s=round(recovered_after, 2),
            rows_for_503=len(rows) - len(acknowledged))


# ------------------------------------------------------------------------------------ Redis


def test_redis_unavailable_writes_succeed_and_jobs_flow_after(stack, org, smtp_server):
    base, token = org
    http = stack.client(token)
    worker_env = {**stack.env, "SMTP_URL": smtp_server.url, "WORKTEAM_SWEEP_SECONDS": "1",
                  "WORKTEAM_REPUBLISH_AFTER_SECONDS": "1", "WORKTEAM_PUBLISH_BACKOFF_SECONDS": "1",
                  "WORKTEAM_RETRY_BASE_SECONDS": "0.5", "WORKTEAM_RETRY_MAX_SECONDS": "2"}
    worker = Worker(worker_env, concurrency=2, beat=True)
    try:
        stack.redis.stop()
        assert http.request("GET", "/readyz").status == 503
        ready = http.request("GET", "/readyz").body
        assert ready["checks"]["database"] == "ok"
        assert ready["checks"]["redis"].startswith("unavailable")

        timings, names = [], []
        for i in range(30):
            name = f"redis-{i}-{uuid.uuid4().hex[:6]}@example.com"
            started = time.monotonic()
            response = http.request("POST", f"{base}/Users", _user(name))
            timings.append(time.monotonic() - started)
            assert response.status == 201, response
            names.append(name)
        patched = http.request("PATCH", f"{base}/Users/{response.body['id']}", {
            "schemas": [PATCH], "Operations": [{"op": "replace", "path": "active",
                                                "value": False}]})
        assert patched.status == 200, patched

        org_id = base.rsplit("/", 1)[1]
        with psycopg.connect(stack.pg.url) as conn:
            pending = conn.execute("SELECT count(*) FROM jobs WHERE org_id = %s AND "
                                   "state = 'pending'", (org_id,)).fetchone()[0]
        assert pending > 0

        with psycopg.connect(stack.pg.url) as conn:  # other tests' leftovers: not ours to wait for
            conn.execute("UPDATE jobs SET state = 'cancelled' WHERE org_id <> %s "
                         "AND state IN ('pending', 'running')", (org_id,))
        stack.redis.start()
        wait_until(lambda: http.request("GET", "/readyz").status == 200, timeout=15)
        back = time.monotonic()
        worker.start(timeout=60)

        def drained() -> bool:
            with psycopg.connect(stack.pg.url) as conn:
                states = Counter(s for (s,) in conn.execute(
                    "SELECT state FROM jobs WHERE org_id = %s", (org_id,)))
            assert states["failed"] == 0, states
            return bool(states) and states["pending"] == 0 and states["running"] == 0

        try:
            wait_until(drained, timeout=60, interval=0.5)
        except AssertionError:
            with psycopg.connect(stack.pg.url) as conn:
                jobs = conn.execute("SELECT kind, state, attempts, error FROM jobs "
                                    "WHERE org_id = %s", (org_id,)).fetchall()
            raise AssertionError(f"jobs: {jobs[:10]}\nworker log: {worker.log()[-3000:]}") from None
        figures("redis_unavailable", writes=len(timings) + 1, write_errors=0,
                slowest_write_s=round(max(timings), 3), jobs_pending_during_outage=pending,
                jobs_done_within_s=round(time.monotonic() - back, 1), jobs_failed=0)
    finally:
        worker.stop()
        if stack.redis.proc is None:
            stack.redis.start()


# --------------------------------------------------------------------------------- gunicorn


def test_gunicorn_worker_killed_during_requests(stack, org):
    base, token = org
    http = stack.client(token)
    seed = http.request("POST", f"{base}/Users", _user(f"seed-{uuid.uuid4().hex[:6]}@x.example"))
    assert seed.status == 201
    victim = stack.web.workers()[0]
    killed: dict[str, float] = {}

    def traffic(thread: int, n: int) -> tuple:
        name = None
        if n % 3 == 0:
            name = f"k-{thread}-{n}-{uuid.uuid4().hex[:6]}@x.example"
            response = http.request("POST", f"{base}/Users", _user(name))
        else:
            response = http.request("GET", f"{base}/Users/{seed.body['id']}")
        return response.status, response.error, time.monotonic(), thread, name

    def kill() -> None:
        time.sleep(1.5)
        os.kill(victim, signal.SIGKILL)
        killed["at"] = time.monotonic()

    chaos = threading.Thread(target=kill)
    chaos.start()
    results = run_load(6, 5, traffic)
    chaos.join()
    statuses = Counter(r[0] for r in results)
    # A gthread worker serves a request per thread, each client one request at a time: the
    # requests it held when killed are lost, at most one per client, and nothing else.
    lost = Counter(r[3] for r in results if r[0] == 0)
    assert all(n == 1 for n in lost.values()), [r for r in results if r[0] == 0]
    assert set(statuses) <= {0, 200, 201}, statuses
    acknowledged = {r[4] for r in results if r[0] == 201}
    assert acknowledged <= {row[0] for row in _rows(stack, base)}
    after = [r[0] for r in results if r[2] > killed["at"] + 0.5]
    assert after and set(after) <= {200, 201}
    wait_until(lambda: len(stack.web.workers()) == 2 and victim not in stack.web.workers(),
               timeout=20)
    figures("gunicorn_worker_kill", requests=len(results), lost_with_the_worker=statuses[0],
            clients_that_lost_one=len(lost), created=len(acknowledged),
            errors_500=statuses[500], served_after_kill=len(after))


# ---------------------------------------------------------------------- concurrent clients


def test_sixteen_clients_racing_on_the_same_users(stack, org):
    base, token = org
    http = stack.client(token, timeout=30)
    hot = []
    for i in range(4):
        response = http.request("POST", f"{base}/Users", _user(f"hot-{i}@race.example"))
        assert response.status == 201
        hot.append(response.body["id"])
    pool = [f"race-{i}@race.example" for i in range(40)]

    def race(thread: int, n: int) -> tuple:
        if random.random() < 0.4:
            name = random.choice(pool)
            response = http.request("POST", f"{base}/Users", _user(name))
            return "create", name, response.status, None, None
        user_id = random.choice(hot)
        value = f"t{thread}-{n}"
        response = http.request("PATCH", f"{base}/Users/{user_id}", {
            "schemas": [PATCH], "Operations": [
                {"op": "replace", "path": "title", "value": value},
                {"op": "replace", "path": "nickName", "value": value}]})
        version = None
        if response.status == 200:
            version = int(re.search(r"\d+", response.body["meta"]["version"]).group())
            assert response.body["title"] == value
        return "patch", user_id, response.status, version, value

    started = time.monotonic()
    results = run_load(16, SOAK_SECONDS, race)
    elapsed = time.monotonic() - started
    statuses = Counter(r[2] for r in results)
    assert set(statuses) <= {200, 201, 409}, statuses

    creates = Counter(r[1] for r in results if r[0] == "create" and r[2] == 201)
    assert all(count == 1 for count in creates.values()), creates
    rows = _rows(stack, base)
    per_name = Counter(row[0].lower() for row in rows)
    duplicates = {name: c for name, c in per_name.items() if c > 1}
    assert not duplicates
    assert set(creates) <= set(per_name)

    mismatches = []
    for user_id in hot:
        acked = [r for r in results if r[0] == "patch" and r[1] == user_id and r[2] == 200]
        if not acked:
            continue
        last = max(acked, key=lambda r: r[3])
        versions = [r[3] for r in acked]
        assert len(versions) == len(set(versions)), "two writes acknowledged the same version"
        final = http.request("GET", f"{base}/Users/{user_id}").body
        if (final["title"], final["nickName"]) != (last[4], last[4]):
            mismatches.append((user_id, final["title"], last))
        assert final["meta"]["version"] == f'W/"{last[3]}"'
    assert not mismatches
    figures("sixteen_clients", seconds=round(elapsed, 1), requests=len(results),
            requests_per_s=round(len(results) / elapsed, 1), statuses=dict(statuses),
            errors_500=statuses[500], duplicate_users=len(duplicates),
            final_state_mismatches=len(mismatches))


# ---------------------------------------------------------------------------------- metrics


def test_metrics_add_up_across_gunicorn_workers(stack, org):
    http = stack.client()

    def count() -> float:
        text = http.request("GET", "/metrics").body
        assert isinstance(text, str), text
        return sum(float(v) for v in re.findall(
            r'^workteam_http_requests_total\{[^}]*route="/healthz"[^}]*\} (\S+)$', text, re.M))

    def writers() -> set[str]:  # one counter file per worker process id
        return {f.name.rsplit("_", 1)[-1] for f in stack.web.metrics_dir.glob("counter_*.db")}

    before = count()
    sent = 0
    deadline = time.monotonic() + 20
    # Concurrent requests until both workers have served some (sync workers take turns).
    while (len(writers()) < 2 or sent < 40) and time.monotonic() < deadline:
        results = run_load(4, 0.3, lambda _t, _n: (http.request("GET", "/healthz").status,))
        assert {r[0] for r in results} == {200}
        sent += len(results)
    assert len(writers()) >= 2, writers()
    scrapes = {count() for _ in range(6)}  # whichever worker answers, the same total
    assert scrapes == {before + sent}, (before, sent, scrapes)
    figures("metrics_multiprocess", requests=sent, workers_counted=len(writers()),
            scrapes=6, scrape_totals_equal=len(scrapes) == 1)
