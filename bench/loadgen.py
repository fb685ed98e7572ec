"""Load generator: asyncio + aiohttp (C HTTP parser), N concurrent clients, bounded.

A phase runs an async operation over a sequence of items with N concurrent clients; each
client takes the next item, runs the operation (one or more HTTP requests through
``Client.call``), and records the operation's latency. Every response's status and body
are checked by the caller's check function; a phase with any error is invalid. A phase is
bounded twice: by its item count and by a deadline after which no new item is started (a
hard timeout then cancels what is left). The generator reports its own CPU share (CPU
seconds of this process over wall seconds, 1.0 = one core) and the machine's CPU use, so a
reader can tell whether the generator was the bottleneck, and a gauge of the machine's speed
during the phase (the CPU time of a fixed computation, run.machine_speed_notes).
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiohttp.http_parser as aiohttp_parsers
import psutil

SCIM_JSON = "application/scim+json"
MAX_ERROR_SAMPLES = 5


# aiohttp answers with its pure-Python parser when its extension is missing or turned off
# (AIOHTTP_NO_EXTENSIONS), which would make the load generator a bottleneck sooner.
C_PARSER = aiohttp_parsers.HttpResponseParser.__module__ == "aiohttp._http_parser"


def http_parser() -> str:
    """aiohttp's version and its HTTP parser, as every result records them."""
    return f"aiohttp {aiohttp.__version__}, {'C' if C_PARSER else 'pure-Python'} HTTP parser"


class CheckFailed(Exception):
    """A response whose status or body is not what the workload expects."""


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of ``values`` (0 for an empty sequence)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class PhaseResult:
    name: str
    concurrency: int
    ops: int = 0
    requests: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    loadgen_cpu_s: float = 0.0
    # CPU times of a fixed piece of work run every GAUGE_INTERVAL seconds during the phase.
    gauge_ms: list[float] = field(default_factory=list)
    machine_cpu_pct: float = 0.0
    stopped_by: str = "count"
    # What the server's PostgreSQL backends did meanwhile (servers.WaitSampler), if sampled.
    pg_activity: dict[str, Any] | None = None
    # Each web process's CPU and client connections meanwhile (servers.WebSpread).
    web_spread: dict[str, Any] | None = None
    # What the autovacuum emulation ran meanwhile (servers.Autovacuum.during), if anything.
    autovacuum: list[str] | None = None
    # PostgreSQL's WAL written and checkpoints begun meanwhile (servers.WalMeter).
    wal: dict[str, Any] | None = None
    # Wall-clock time the phase began (HH:MM:SS, as raw/<server>-autovacuum.log writes it).
    started: str = ""

    @property
    def valid(self) -> bool:
        return self.errors == 0 and self.ops > 0

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.wall_s if self.wall_s else 0.0

    @property
    def req_per_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    @property
    def loadgen_cpu_share(self) -> float:
        """CPU seconds of the load generator per wall second (1.0 = one full core)."""
        return self.loadgen_cpu_s / self.wall_s if self.wall_s else 0.0

    @property
    def machine_gauge_ms(self) -> float:
        """The median CPU time of the gauge's work: higher when the machine ran slower."""
        return statistics.median(self.gauge_ms) if self.gauge_ms else 0.0

    def pct(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "valid": self.valid,
            "ops": self.ops,
            "requests": self.requests,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "wall_s": round(self.wall_s, 3),
            "ops_per_s": round(self.ops_per_s, 1),
            "req_per_s": round(self.req_per_s, 1),
            "p50_ms": round(self.pct(50), 2),
            "p95_ms": round(self.pct(95), 2),
            "p99_ms": round(self.pct(99), 2),
            "loadgen_cpu_share": round(self.loadgen_cpu_share, 3),
            "machine_gauge_ms": round(self.machine_gauge_ms, 3),
            "machine_cpu_pct": round(self.machine_cpu_pct, 1),
            "stopped_by": self.stopped_by,
            **({"pg_activity": self.pg_activity} if self.pg_activity else {}),
            **({"web_spread": self.web_spread} if self.web_spread else {}),
            **({"autovacuum": self.autovacuum} if self.autovacuum else {}),
            **({"wal": self.wal} if self.wal else {}),
            **({"started": self.started} if self.started else {}),
        }


Check = Callable[[int, Any], None]


class Client:
    """One session's view of a SCIM base URL, counting requests and errors into a phase."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, result: PhaseResult):
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.result = result

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        expect: tuple[int, ...] = (200,),
        check: Check | None = None,
    ) -> tuple[int, Any]:
        """Send one request; raise CheckFailed unless its status and body pass the checks.

        The body is parsed as JSON when there is one; ``check(status, doc)`` raises
        CheckFailed; a KeyError, IndexError, TypeError or ValueError counts alike.
        """
        data = None if body is None else json.dumps(body)
        self.result.requests += 1
        async with self.session.request(
            method, self.base_url + path, params=params, data=data
        ) as resp:
            raw = await resp.read()
            status = resp.status
        doc: Any = None
        if raw:
            try:
                doc = json.loads(raw)
            except ValueError as exc:
                msg = f"{method} {path}: {status} body is not JSON: {raw[:200]!r}"
                raise CheckFailed(msg) from exc
        if status not in expect:
            detail = json.dumps(doc)[:300] if doc is not None else ""
            raise CheckFailed(f"{method} {path}: status {status}, expected {expect}: {detail}")
        if check is not None:
            try:
                check(status, doc)
            except CheckFailed as exc:
                raise CheckFailed(f"{method} {path}: {exc}") from exc
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                msg = f"{method} {path}: bad body ({exc!r}): {json.dumps(doc)[:300]}"
                raise CheckFailed(msg) from exc
        return status, doc


GAUGE_INTERVAL = 0.25
GAUGE_LOOPS = 20_000


def _gauge_work() -> float:
    """CPU milliseconds of a fixed computation (about a millisecond on this machine)."""
    t0 = time.thread_time()
    total = 0
    for i in range(GAUGE_LOOPS):
        total += i * i % 7
    return (time.thread_time() - t0) * 1000


async def _gauge(result: PhaseResult, stop: asyncio.Event) -> None:
    """Time the gauge's work every GAUGE_INTERVAL s: the host's other tenants slow this
    machine by varying amounts, within a run too, and every rate measured moves with it."""
    while not stop.is_set():
        result.gauge_ms.append(_gauge_work())
        try:
            await asyncio.wait_for(stop.wait(), GAUGE_INTERVAL)
        except TimeoutError:
            pass


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run_phase(
    name: str,
    base_url: str,
    token: str,
    items: Sequence[Any],
    op: Callable[[Client, Any], Awaitable[None]],
    concurrency: int,
    max_seconds: float,
) -> PhaseResult:
    result = PhaseResult(name=name, concurrency=concurrency)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": SCIM_JSON,
        "Accept": f"{SCIM_JSON}, application/json",
    }
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=30)
    timeout = aiohttp.ClientTimeout(total=60)
    next_index = 0
    start = time.perf_counter()
    deadline = start + max_seconds

    async with aiohttp.ClientSession(
        headers=headers, connector=connector, timeout=timeout, auto_decompress=False
    ) as session:
        client = Client(session, base_url, result)

        async def worker() -> None:
            nonlocal next_index
            while next_index < len(items):
                if time.perf_counter() >= deadline:
                    result.stopped_by = "time"
                    return
                item = items[next_index]
                next_index += 1
                t0 = time.perf_counter()
                try:
                    await op(client, item)
                except (TimeoutError, CheckFailed, aiohttp.ClientError) as exc:
                    result.errors += 1
                    if len(result.error_samples) < MAX_ERROR_SAMPLES:
                        result.error_samples.append(str(exc) or repr(exc))
                    continue
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                result.ops += 1

        cpu0 = _cpu_seconds()
        machine0 = psutil.cpu_times()
        start = time.perf_counter()
        deadline = start + max_seconds
        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        stop_gauge = asyncio.Event()
        gauge = asyncio.create_task(_gauge(result, stop_gauge))
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=max_seconds + 60)
        except TimeoutError:
            result.stopped_by = "hard timeout"
            result.errors += 1
            result.error_samples.append(f"phase did not finish {max_seconds + 60:.0f}s in")
        stop_gauge.set()
        await gauge
        result.wall_s = time.perf_counter() - start
        result.loadgen_cpu_s = _cpu_seconds() - cpu0
        machine1 = psutil.cpu_times()
        busy = (machine1.user + machine1.system + machine1.nice + getattr(machine1, "softirq", 0)
                + getattr(machine1, "irq", 0)) - (
            machine0.user + machine0.system + machine0.nice + getattr(machine0, "softirq", 0)
            + getattr(machine0, "irq", 0))
        total = sum(machine1) - sum(machine0)
        result.machine_cpu_pct = 100 * busy / total if total else 0.0
    return result


def run_phase(
    name: str,
    base_url: str,
    token: str,
    items: Sequence[Any],
    op: Callable[[Client, Any], Awaitable[None]],
    *,
    concurrency: int = 16,
    max_seconds: float = 60.0,
) -> PhaseResult:
    """Run ``op`` over ``items`` with ``concurrency`` clients for at most ``max_seconds``."""
    return asyncio.run(
        _run_phase(name, base_url, token, items, op, concurrency, max_seconds)
    )
