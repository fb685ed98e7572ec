"""One command for the whole benchmark: every server, every workload, one table.

    .venv/bin/python bench/run.py [--quick] [--only ours,ceiling,...] [--workloads W1,W2]

Install every server (peers: bench/peers/setup_*.sh, idempotent) and start it on a fresh
database; the servers then take turns, a phase each, through the workloads (ServerRun says
why), while the peak RSS of each one's processes is sampled; each stops after its last. Then
write bench/results/results-<date>.md, results-latest.md, results-<date>.json and the table
between the results markers of bench/README.md. Raw logs go to bench/results/raw/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads as wl
from loadgen import C_PARSER, CheckFailed, PhaseResult, http_parser
from servers import (
    BENCH,
    SERVERS,
    Autovacuum,
    CpuMeter,
    Ours,
    RssSampler,
    Server,
    ServerError,
    WaitSampler,
    WalMeter,
    WebSpread,
    ensure_free,
)

ALL_WORKLOADS = ["W1", "W2", "W3", "W4", "W5", "W6", "W7"]
DEFAULT_ORDER = ["ours", "ceiling", "scim2-server", "django-scim2"]
PEERS = ("scim2-server", "django-scim2")
RESULTS = BENCH / "results"
README = BENCH / "README.md"
MARK_START = "<!-- results:start -->"
MARK_END = "<!-- results:end -->"
# Yielded by ``run_workloads`` at the end of a step whose next step only grows the server (to
# 100,000 users for W2): nothing is measured in it, so it need not wait for the others'
# background work (ours' W6 welcome mails drain meanwhile).
SEEDING = "seeding"


class Recorder:
    """The figures of one server: metric key -> {value, valid, note}."""

    def __init__(self, server: Server):
        self.server = server
        self.metrics: dict[str, dict[str, Any]] = {}
        self.phases: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.cpu_shares: list[float] = []
        self.meter = CpuMeter(server)
        self.autovacuum: Autovacuum | None = None  # the server's emulation, once started
        # phase key -> {"ops": n, "seconds": {process group: CPU seconds}} (summed over parts)
        self.cpu: dict[str, dict[str, Any]] = {}

    def say(self, line: str) -> None:
        """A progress line, named by its server (their phases interleave)."""
        print(f"  {self.server.name:<13} {line}", flush=True)

    def put(self, key: str, value: float | None, valid: bool = True, note: str = "") -> None:
        self.metrics[key] = {"value": value, "valid": valid, "note": note}

    def phase(self, result: PhaseResult, measured: bool = True) -> PhaseResult:
        summary = result.summary()
        self.phases.append(summary)
        flag = "ok" if result.valid else "INVALID"
        self.say(f"{result.name:<38} {flag:<7} ops={result.ops:<7} {result.wall_s:7.2f}s "
                 f"{result.ops_per_s:8.1f}/s p50={result.pct(50):6.1f}ms "
                 f"p99={result.pct(99):7.1f}ms gen-cpu={result.loadgen_cpu_share:.2f} "
                 f"machine={result.machine_cpu_pct:.0f}% gauge={result.machine_gauge_ms:.2f}ms")
        if not result.valid:
            for sample in result.error_samples[:2]:
                self.say(f"    error: {sample[:300]}")
        if measured and result.ops:
            self.cpu_shares.append(result.loadgen_cpu_share)
        return result

    def measured(self, key: str, run: Callable[[], PhaseResult]) -> PhaseResult:
        """``rec.phase(run())``, with the CPU each process group used meanwhile added to
        ``key`` (the CPU table: what each operation costs, and where)."""
        before = self.meter.snapshot()
        wal_before = WalMeter.snapshot() if self.server.db else None
        waits = WaitSampler(self.server.db) if self.server.db else None
        spread = WebSpread(self.server.roots(), self.server.port)
        spread.start()
        if waits is not None:
            waits.start()
        started, clock = time.monotonic(), time.strftime("%H:%M:%S")
        result = run()
        result.started = clock
        if self.autovacuum is not None:
            result.autovacuum = self.autovacuum.during(started, time.monotonic())
        result.web_spread = spread.stop()
        if waits is not None:
            result.pg_activity = waits.stop()
        if wal_before is not None:
            result.wal = WalMeter.since(wal_before, WalMeter.snapshot(), result.ops)
        self.phase(result)
        used = CpuMeter.since(before, self.meter.snapshot())
        entry = self.cpu.setdefault(key, {"ops": 0, "seconds": {}})
        entry["ops"] += result.ops
        if result.wal:
            entry["wal_kib"] = entry.get("wal_kib", 0.0) + result.wal["kib_per_op"] * result.ops
        for group, seconds in used.items():
            entry["seconds"][group] = entry["seconds"].get(group, 0.0) + seconds
        return result

    def invalid_note(self, result: PhaseResult) -> str:
        return (result.error_samples[0] if result.error_samples else "no operation done")[:200]


class ServerRun:
    """One server's part of a run: started with the others, then its workloads a step at a
    time (``run_workloads`` yields between phases), then stopped and its figures collected.

    Servers take turns, one step each (``--sequential``: each to its end before the next):
    this host's speed drifts by 20-40 % over minutes, and a ratio of two servers measured ten
    minutes apart carried that drift. During a server's turn the others are idle: their
    background work is done before it starts (``Server.settle``; not before a step that only
    grows the server, ``SEEDING``), and their autovacuum emulation and memory sampling pause."""

    def __init__(self, name: str, raw_dir: Path, run_args: tuple[Any, ...]):
        self.name = name
        self.server = SERVERS[name](raw_dir)
        self.rec = Recorder(self.server)
        self.out: dict[str, Any] = {"name": name, "label": self.server.label, "error": None}
        self.run_args = run_args  # (sizes, selected, seed, bulk_seed) for run_workloads
        self.sampler: RssSampler | None = None
        self.autovacuum: Autovacuum | None = None
        self.steps: Iterator[str | None] | None = None
        self.quiet_s = 0.0  # waited in all for its background work before others' turns
        self.quiet_after: list[str] = []  # "<phase> <seconds> s": the waits of 1 s or more
        self.seeding_next = False  # its next step only grows it (SEEDING)

    def start(self) -> None:
        server, out = self.server, self.out
        print(f"== {self.name}: starting", flush=True)
        try:
            t0 = time.perf_counter()
            server.install()
            t1 = time.perf_counter()
            ensure_free(server.port, self.name)
            server.start()
            out["install_s"] = round(t1 - t0, 1)
            out["start_s"] = round(time.perf_counter() - t1, 1)
            print(f"  up at {server.base_url} (install {out['install_s']}s, start "
                  f"{out['start_s']}s)", flush=True)
            self.sampler = RssSampler(server.roots())
            self.sampler.start()
            if server.db:
                self.autovacuum = self.rec.autovacuum = Autovacuum(
                    server.db, server.raw_dir / f"{self.name}-autovacuum.log")
                self.autovacuum.start()
            self.steps = run_workloads(server, self.rec, *self.run_args)
            self._pause()
        except Exception as exc:
            self._failed(exc)

    def step(self, others: list[ServerRun]) -> bool:
        """One turn: the others' background work finished first (unless the step only
        grows this server), then one step of this server's workloads. False once its
        workloads are over (or failed)."""
        if self.steps is None:
            return False
        for other in others:
            if other is not self and not self.seeding_next:
                other.quiet()
        if self.autovacuum is not None:
            self.autovacuum.resume()
        if self.sampler is not None:
            self.sampler.resume()
        try:
            self.seeding_next = next(self.steps) == SEEDING
        except StopIteration:
            self.steps = None
        except Exception as exc:
            self._failed(exc)
        self._pause()
        return self.steps is not None

    def quiet(self) -> None:
        """Let this server's background work finish before another server's step (bounded:
        a note says if some was left)."""
        if self.steps is None:
            return
        waited, left = self.server.settle(self.run_args[0].phase_max_seconds)
        self.quiet_s += waited
        if waited >= 1 and self.rec.phases:
            self.quiet_after.append(f"{self.rec.phases[-1]['name']} {waited:.0f} s")
        if left:
            self.rec.notes.append(f"{left} jobs still pending after {waited:.0f} s of waiting "
                                  "before another server's phase")

    def _pause(self) -> None:
        if self.autovacuum is not None:
            self.autovacuum.pause()
        if self.sampler is not None:
            self.sampler.pause()

    def _failed(self, exc: Exception) -> None:
        self.steps = None
        if isinstance(exc, (ServerError, CheckFailed)):
            self.out["error"] = str(exc)
            print(f"  {self.name}: ERROR: {exc}", flush=True)
        else:  # record and go on with the other servers
            self.out["error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()

    def finish(self) -> dict[str, Any]:
        rec, sampler, out = self.rec, self.sampler, self.out
        if self.autovacuum is not None:
            self.autovacuum.stop()
            rec.notes.append(f"autovacuum emulation ran {self.autovacuum.runs} ANALYZE/VACUUM "
                             "commands (servers.Autovacuum)")
        if sampler is not None:
            sampler.stop()
            rec.put("mem_peak_mb", round(sampler.peak / 2**20, 1),
                    note=f"{sampler.peak_processes} processes")
            rec.put("mem_peak_pss_mb", round(sampler.peak_pss / 2**20, 1))
            web_rss, web_pss = sampler.peak_by_tag.get("web", (0, 0))
            rec.put("mem_web_peak_mb", round(web_rss / 2**20, 1))
            rec.put("mem_web_peak_pss_mb", round(web_pss / 2**20, 1))
        self.server.stop()
        if rec.cpu_shares:
            rec.put("loadgen_cpu", round(max(rec.cpu_shares), 2))
        if self.quiet_s >= 1:
            rec.notes.append(f"its background work was waited for {self.quiet_s:.0f} s in all "
                             "before other servers' turns (after "
                             f"{'; '.join(self.quiet_after) or 'waits of under 1 s each'})")
        rec.notes += machine_speed_notes(rec.phases)
        rec.notes += idle_machine_notes(rec.phases)
        rec.notes += autovacuum_notes(rec.phases)
        rec.notes += checkpoint_notes(rec.phases)
        out.update(metrics=rec.metrics, phases=rec.phases, cpu=rec.cpu,
                   notes=self.server.notes + rec.notes, seeded_by=self.server.seeded_by)
        return out


def run_servers(names: list[str], raw_dir: Path, run_args: tuple[Any, ...],
                sequential: bool) -> dict[str, dict[str, Any]]:
    """Start every server, give them turns until their workloads are over, stop them."""
    # Other work on the machine skews every figure: measure it before starting the servers.
    idle = psutil.cpu_percent(interval=1.0)
    print(f"machine busy {idle:.0f}% before the start", flush=True)
    runs = [ServerRun(name, raw_dir, run_args) for name in names]
    try:
        for run in runs:
            run.out["background_cpu_pct"] = idle
            if idle > 10:
                run.rec.notes.append(f"the machine was {idle:.0f}% busy before the start "
                                     f"(other work): figures are low by about as much")
        # Started side by side (nothing is measured yet; each has its own ports, database
        # and virtualenv): ours' ~10 s start then hides the peers' ~2 s each.
        with ThreadPoolExecutor(len(runs)) as pool:
            list(pool.map(ServerRun.start, runs))
        live = [run for run in runs if run.steps is not None]
        # What the servers cost the machine while waiting for their turn, once their start is
        # over (django-scim2's workers take about a twentieth of a core for a few seconds).
        sizes: wl.Sizes = run_args[0]  # run_args: (sizes, selected, seed, bulk_seed)
        time.sleep(sizes.start_quiet_seconds)
        idle_all = psutil.cpu_percent(interval=2.0)
        print(f"machine busy {idle_all:.0f}% with every server started and idle", flush=True)
        if idle_all > 5:
            for run in live:
                run.rec.notes.append(f"the machine was {idle_all:.0f}% busy with every server "
                                     "started and idle: an idle server's share of it was "
                                     "missing from each phase")
        while live:
            for run in live[:1] if sequential else list(live):
                if not run.step(live):
                    live.remove(run)
                    run.finish()
    finally:
        for run in runs:  # an interrupted run stops every server it started
            if "metrics" not in run.out:
                run.finish()
    return {run.name: run.out for run in runs}


def run_workloads(server: Server, rec: Recorder, sizes: wl.Sizes, selected: list[str],
                  seed: int, bulk_seed: bool) -> Iterator[str | None]:
    """The workloads on one server, in order; yields after each phase (a turn, ServerRun)."""
    rec.phase(wl.warm_up(server), measured=False)
    yield
    state = wl.State()
    is_ours = isinstance(server, Ours)
    w2 = "W2" in selected
    points = sorted({s for s in sizes.w2_sizes if s < sizes.w1_users} | {sizes.w1_users})
    w1_parts: list[PhaseResult] = []
    followup_s = 0.0  # how long W1's follow-up work ran on after each part's last create
    for point in points:
        part = rec.measured(
            "W1", partial(wl.w1_create, server, state, len(state.user_names), point, sizes))
        w1_parts.append(part)
        if not part.valid:
            break
        waited, left = server.settle(sizes.phase_max_seconds)
        followup_s += waited
        if left:
            rec.notes.append(f"W1: {left} jobs still pending {waited:.0f} s after its creates")
        yield
        if w2 and point in sizes.w2_sizes:
            record_w2(server, rec, state, point, sizes, seed)
            yield
    w1 = wl.merge("W1", w1_parts)
    if "W1" in selected:
        if w1.valid:
            rec.put("w1_users_s", round(w1.ops_per_s, 1))
            for p in (50, 95, 99):
                rec.put(f"w1_p{p}", round(w1.pct(p), 1))
            if is_ours:  # the peers have no follow-up work
                rec.put("w1_followup_s", round(followup_s, 1))
                rec.put("w1_done_users_s", round(w1.ops / (w1.wall_s + followup_s), 1))
        else:
            rec.put("w1_users_s", None, False, rec.invalid_note(w1))
    if not w1.valid:
        raise CheckFailed("W1 failed; the later workloads need its users")

    if "W3" in selected:
        # W3 with its own follow-up work (deactivation notices, license checks), not W1's.
        settle(server, rec, "W3", sizes)
        patch = rec.measured("W3 PATCH", lambda: wl.w3_patch(server, state, sizes, seed))
        if patch.valid:
            rec.put("w3_patch_s", round(patch.req_per_s, 1))
        else:
            rec.put("w3_patch_s", None, False, rec.invalid_note(patch))
            alt = rec.phase(wl.w3_patch(server, state, sizes, seed, boolean=True))
            rec.put("w3_patch_bool_s", round(alt.req_per_s, 1) if alt.valid else None,
                    alt.valid, "" if alt.valid else rec.invalid_note(alt))
        yield
        put = rec.measured("W3 PUT", lambda: wl.w3_put(server, state, sizes, seed))
        rec.put("w3_put_s", round(put.req_per_s, 1) if put.valid else None, put.valid,
                "" if put.valid else rec.invalid_note(put))
        yield

    if "W4" in selected:
        # The import alone, not beside W3's deactivation notices and license checks.
        settle(server, rec, "W4", sizes)
        walk, extra = wl.w4_import(server, state, sizes)
        rec.phase(walk, measured=False)
        rec.put("w4_s", round(walk.wall_s, 3) if walk.valid else None, walk.valid,
                f"{len(state.user_names)} users" if walk.valid else rec.invalid_note(walk))
        ratio = extra.get("last_over_first")
        rec.put("w4_last_first", ratio, bool(ratio) and extra["probe_valid"],
                f"first {extra['first_page_ms']} ms, last {extra['last_page_ms']} ms")
        yield

    # Steps that only grow a server for W2's large sizes come after W5 (and ours' W6); the
    # step before each says so (SEEDING), so that it need not wait for ours' W6 mails.
    big = [s for s in sizes.w2_sizes if s > sizes.w1_users] if w2 else []
    grows = SEEDING if big else None
    w6 = is_ours and "W6" in selected
    if "W5" in selected:
        w5 = rec.phase(wl.w5_group(server, state, sizes), measured=False)
        rec.put("w5_s", round(w5.wall_s, 3) if w5.valid else None, w5.valid,
                f"{sizes.w5_members} members" if w5.valid else rec.invalid_note(w5))
        yield None if w6 else grows

    if w6:
        assert isinstance(server, Ours)
        managers, extra = wl.w6_managers(server, state, sizes, seed)
        rec.phase(managers, measured=False)
        resolved_after = extra.get("settle_s")
        rec.put("w6_s", resolved_after, managers.valid and resolved_after is not None,
                f"{sizes.w6_users} users created in {extra['create_s']}s"
                if managers.valid else rec.invalid_note(managers))
        yield grows

    for size in big:
        try:
            how = wl.seed_to(server, state, size, sizes, allow_slow=bulk_seed)
        except wl.SkipSize as exc:
            rec.put(f"w2_{size}_s", None, True, f"skipped: {exc}")
            rec.say(f"W2 at {size}: skipped: {exc}")
            continue
        note = f"grown by {how}" if how != "none" else ""
        if len(state.user_names) != size:
            note = (note + "; " if note else "") + f"measured at {len(state.user_names)} users"
        if note:
            rec.notes.append(f"W2 at {size}: {note}")
            rec.say(f"W2 at {size}: {note}")
        yield  # the lookups: a step of their own, after the others' background work
        record_w2(server, rec, state, size, sizes, seed)
        yield grows if size != big[-1] else None
    if w2 and len(sizes.w2_sizes) > 1:
        lo = rec.metrics.get(f"w2_{sizes.w2_sizes[0]}_s", {}).get("value")
        hi = rec.metrics.get(f"w2_{sizes.w2_sizes[-1]}_s", {}).get("value")
        if lo and hi:
            rec.put("w2_scale", round(hi / lo, 2))

    if is_ours and "W7" in selected:
        assert isinstance(server, Ours)
        settle(server, rec, "W7", sizes)
        outcome = wl.w7_resync(server, sizes)
        rec.say(f"W7 resync: {outcome.value} {outcome.note}")
        rec.put("w7_s", outcome.value, outcome.valid, outcome.note)


# A W2 phase whose gauge exceeds that of the server's fastest W2 phase by more than this
# factor gets a note.
SLOWER_MACHINE_NOTE = 1.2


def idle_machine_notes(phases: list[dict[str, Any]], busy_pct: float = 90.0) -> list[str]:
    """Notes on concurrent phases that left the machine partly idle, with what PostgreSQL's
    backends were waiting on meanwhile (``pg_activity``, from servers.WaitSampler).

    16 clients keep both cores busy when a server only computes (98-99 % in W1-W3); a phase
    well below that waited on something, and the rate it measured says so only indirectly.
    On 2026-12-06 ours' W3 PATCH phase ran at 77 % once and at 98 % in every rerun.
    """
    notes = []
    for p in phases:
        if p["concurrency"] < 16 or p["machine_cpu_pct"] >= busy_pct or not p["ops"]:
            continue
        text = f"{p['name']}: the machine was {p['machine_cpu_pct']:.0f}% busy"
        activity = p.get("pg_activity")
        if activity and activity["samples"]:
            waits = ", ".join(f"{k} {v:.0%}" for k, v in list(activity["waits"].items())[:4])
            text += (f"; PostgreSQL: {activity['active_backends']} active backends on average "
                     f"({waits}), {activity['idle_in_transaction']} idle in a transaction")
        spread = p.get("web_spread")
        if spread and len(spread["process_cores"]) > 1:
            text += (f"; web processes' CPU {' / '.join(map(str, spread['process_cores']))} "
                     f"cores, their client connections "
                     f"{' / '.join(map(str, spread['connections']))}")
        notes.append(text)
    return notes


def checkpoint_notes(phases: list[dict[str, Any]]) -> list[str]:
    """Notes on phases that a PostgreSQL checkpoint began in (servers.WalMeter): their writes
    logged whole pages, which costs PostgreSQL's CPU and the WAL flush's wait."""
    return [f"{p['name']}: {p['wal']['checkpoints']} PostgreSQL checkpoint(s) began during the "
            f"phase (WAL {p['wal']['kib_per_op']} KiB per operation)"
            for p in phases if p.get("wal", {}).get("checkpoints")]


def autovacuum_notes(phases: list[dict[str, Any]]) -> list[str]:
    """Notes on phases the autovacuum emulation ran during (servers.Autovacuum): its work is
    counted in PostgreSQL's CPU per operation and takes CPU from the server's, as a real
    autovacuum would; a phase without it ran on an otherwise quiet database. In the
    2026-12-06 15:39 run, ours' W2 at 10,000 users met the vacuum of users, jobs, sent_mail and
    audit_events that W1's 10,000 creates had called for: PostgreSQL's CPU per lookup 0.45 ms
    against 0.18 in the W2 phases before and after it, the rate 1,156 against 1,305 and 1,281.
    """
    return [f"{p['name']}: the autovacuum emulation ran during the phase "
            f"({', '.join(p['autovacuum'])}); PostgreSQL's CPU per operation includes it"
            for p in phases if p.get("autovacuum")]


def machine_speed_notes(phases: list[dict[str, Any]]) -> list[str]:
    """Notes on W2 phases that ran on a slower machine than the others.

    The host's other tenants slow this machine by varying amounts, within a run too: the load
    generator times a fixed computation a few times a second (loadgen._gauge), and a rate
    measured while that took longer is low for that reason, not only for the server's.
    W2 at 100,000 against 1,000 users is the comparison within one server that it can upset.
    """
    gauge = {p["name"]: p["machine_gauge_ms"] for p in phases
             if p["name"].startswith("W2 lookups") and p.get("machine_gauge_ms")}
    if len(gauge) < 2:
        return []
    least = min(gauge.values())
    return [f"{name}: the machine was about {ms / least - 1:.0%} slower than in the fastest "
            f"W2 phase (the load generator's gauge, a fixed computation: {ms:.3f} ms of CPU "
            f"against {least:.3f}); its rate is low by up to about as much"
            for name, ms in gauge.items() if ms > SLOWER_MACHINE_NOTE * least]


def settle(server: Server, rec: Recorder, phase: str, sizes: wl.Sizes) -> None:
    """Let a server with background work finish that of the earlier phases (bounded)."""
    waited, left = server.settle(sizes.phase_max_seconds)
    if waited or left:
        rec.notes.append(f"{phase}: started after {waited:.0f} s waiting for background work"
                         + (f", {left} jobs still pending" if left else ""))
        rec.say(rec.notes[-1])


def record_w2(server: Server, rec: Recorder, state: wl.State, size: int, sizes: wl.Sizes,
              seed: int) -> None:
    # Lookups at this size, not lookups competing with the welcome mails of the users just
    # created: a server with background work finishes it first (bounded; said in the notes).
    settle(server, rec, f"W2 at {size}", sizes)
    r = rec.measured(f"W2 at {size:,}",
                     lambda: wl.w2_lookups(server, state, size, sizes, seed + size))
    if r.valid:
        rec.put(f"w2_{size}_s", round(r.req_per_s, 1))
        rec.put(f"w2_{size}_p50", round(r.pct(50), 2))
        rec.put(f"w2_{size}_p99", round(r.pct(99), 2))
    else:
        rec.put(f"w2_{size}_s", None, False, rec.invalid_note(r))


# -- report -----------------------------------------------------------------------------
def metric_rows(sizes: wl.Sizes) -> list[tuple[str, str, str, str]]:
    """(key, label, unit, direction) in table order; direction: "up" higher is better."""
    rows = [
        ("w1_users_s", f"W1 initial sync, {sizes.w1_users} users, 16 clients", "users/s", "up"),
        ("w1_p50", "W1 per-user p50 (GET filter + POST)", "ms", "down"),
        ("w1_p95", "W1 per-user p95", "ms", "down"),
        ("w1_p99", "W1 per-user p99", "ms", "down"),
        ("w1_followup_s", "W1 follow-up work (welcome mails, seats) left after the creates",
         "s", "down"),
        ("w1_done_users_s", "W1 users/s counting that follow-up work", "users/s", "up"),
    ]
    for s in sizes.w2_sizes:
        rows += [(f"w2_{s}_s", f"W2 lookup by userName at {s} users", "req/s", "up"),
                 (f"w2_{s}_p50", f"W2 p50 at {s}", "ms", "down"),
                 (f"w2_{s}_p99", f"W2 p99 at {s}", "ms", "down")]
    rows += [
        ("w2_scale", f"W2 rate at {sizes.w2_sizes[-1]} / rate at {sizes.w2_sizes[0]}", "x", "up"),
        ("w3_patch_s", "W3 PATCH active (Entra body, \"False\"/\"True\")", "req/s", "up"),
        ("w3_patch_bool_s", "W3 PATCH active (JSON boolean; only where Entra's failed)",
         "req/s", "up"),
        ("w3_put_s", "W3 PUT full replace", "req/s", "up"),
        ("w4_s", f"W4 import, pages of 100 over {sizes.w1_users} users", "s", "down"),
        ("w4_last_first", "W4 last page / first page", "x", "down"),
        ("w5_s", f"W5 group +{sizes.w5_members} members, PATCH batches of 100", "s", "down"),
        ("w6_s", f"W6 {sizes.w6_users} users with managers: last create -> all resolved",
         "s", "down"),
        ("w7_s", "W7 bulk re-sync of the organization", "s", "down"),
        ("mem_peak_mb", "Peak RSS, web + worker processes", "MiB", "down"),
        ("mem_peak_pss_mb", "Peak PSS (shared pages counted once), web + worker processes",
         "MiB", "down"),
        ("mem_web_peak_mb", "Peak RSS, web processes only (a peer's are all its processes)",
         "MiB", "down"),
        ("mem_web_peak_pss_mb", "Peak PSS, web processes only", "MiB", "down"),
        ("loadgen_cpu", "Load generator CPU share (max over W1-W3 phases; 1.0 = a core)",
         "core", "down"),
    ]
    return rows


def value_of(res: dict[str, Any], key: str) -> float | None:
    m = res.get("metrics", {}).get(key)
    return m["value"] if m and m["valid"] else None


def targets(results: dict[str, dict[str, Any]], sizes: wl.Sizes) -> dict[str, str]:
    """Pass/fail of our service against the issue's figures, per metric key."""
    ours = results.get("ours")
    if not ours or (ours.get("error") and not ours.get("metrics")):
        return {}
    ceil, s2 = results.get("ceiling", {}), results.get("scim2-server", {})
    verdicts: dict[str, str] = {}

    def judge(key: str, ok: bool | None, text: str) -> None:
        verdicts[key] = ("n/a: " if ok is None else ("PASS: " if ok else "FAIL: ")) + text

    def ratio_target(key: str, need_ceiling: float, need_s2: float | None) -> None:
        o, c, s = value_of(ours, key), value_of(ceil, key), value_of(s2, key)
        parts, oks = [], []
        if o is None:
            judge(key, False if key in ours.get("metrics", {}) else None, "no valid figure")
            return
        if c:
            oks.append(o >= need_ceiling * c)
            parts.append(f">= {need_ceiling} x ceiling")
        if need_s2 and s:
            oks.append(o >= need_s2 * s)
            parts.append(f">= {need_s2} x scim2-server")
        judge(key, all(oks) if oks else None, ", ".join(parts) or "no reference ran")

    ratio_target("w1_users_s", 0.8, 1.3)
    ratio_target("w3_patch_s", 0.8, 1.3)
    ratio_target("w3_put_s", 0.8, 1.3)
    for s in sizes.w2_sizes:
        ratio_target(f"w2_{s}_s", 0.8, None)
    scale = value_of(ours, "w2_scale")
    # The two phases are minutes apart and the host's speed drifts; the ceiling's lookups (one
    # indexed SELECT) do not slow with size, so its ratio from the same rounds shows the drift.
    ceil_scale = value_of(ceil, "w2_scale")
    drift = (f"; divided by the ceiling's {ceil_scale:g} from the same rounds (host drift): "
             f"{scale / ceil_scale:.2f}" if scale and ceil_scale else "")
    judge("w2_scale", None if scale is None else scale >= 0.9, ">= 0.9" + drift)

    def limit(key: str, bound: float, text: str) -> None:
        v = value_of(ours, key)
        present = key in ours.get("metrics", {})
        judge(key, (v <= bound) if v is not None else (False if present else None), text)

    limit("w4_s", 1.0, "< 1 s for 10k users")
    limit("w4_last_first", 1.2, "<= 1.2")
    limit("w5_s", 1.0, "< 1 s")
    limit("w6_s", 30.0, "<= 30 s")
    limit("w7_s", 60.0, "< 60 s")
    for key in ("mem_peak_mb", "mem_peak_pss_mb"):
        mem = value_of(ours, key)
        peer_mem = [value_of(results[p], key) for p in PEERS if p in results]
        peer_mem = [m for m in peer_mem if m]
        judge(key, None if mem is None or not peer_mem else mem <= min(peer_mem),
              "<= every peer's")
    return verdicts


def fmt(res: dict[str, Any] | None, key: str) -> str:
    if not res:
        return "-"
    m = res.get("metrics", {}).get(key)
    if m is None:
        return "-"
    if not m["valid"]:
        return "invalid"
    if m["value"] is None:
        return "skipped" if m.get("note", "").startswith("skipped") else "-"
    v = m["value"]
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:g}"


def render(results: dict[str, dict[str, Any]], sizes: wl.Sizes, meta: dict[str, Any]) -> str:
    names = [n for n in DEFAULT_ORDER if n in results]
    verdicts = targets(results, sizes)
    head = ["workload", "unit", *[results[n]["name"] for n in names]]
    if "ours" in results:
        head += ["ours/ceiling", "ours/scim2-server", "target"]
    lines = [f"Run {meta['date']} ({meta['mode']} mode) on {meta['machine']}; gunicorn "
             f"{meta['gunicorn']}; load generator {meta['load_generator']}; "
             f"{meta['duration_s']:.0f} s in all.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, unit, _direction in metric_rows(sizes):
        if not any(key in results[n].get("metrics", {}) for n in names):
            continue
        row = [label, unit, *[fmt(results[n], key) for n in names]]
        if "ours" in results:
            o = value_of(results["ours"], key)
            for ref in ("ceiling", "scim2-server"):
                r = value_of(results.get(ref, {}), key)
                row.append(f"{o / r:.2f}" if o is not None and r else "-")
            row.append(verdicts.get(key, ""))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    notes = []
    for n in names:
        res = results[n]
        if res.get("error"):
            notes.append(f"- **{n}** stopped early: {res['error'][:400]}")
        for m_key, m in res.get("metrics", {}).items():
            if not m["valid"] and m.get("note"):
                notes.append(f"- **{n}** `{m_key}` invalid: {m['note'][:300]}")
            elif m.get("note", "").startswith("skipped"):
                notes.append(f"- **{n}** `{m_key}`: {m['note']}")
        notes += [f"- **{n}**: {note}" for note in res.get("notes", [])]
    if notes:
        lines += ["Notes:", "", *notes, ""]
    lines += cpu_table(results, names)
    lines += [
        "Figures are absolute on this machine (2 cores shared by the server, PostgreSQL "
        "and the load generator); ratios compare servers measured in the same run. "
        "\"invalid\": the phase had at least one wrong status or body and gives no figure. "
        "Per-phase details (requests, errors, CPU) are in the JSON file beside this one.",
    ]
    return "\n".join(lines) + "\n"


# The CPU table's columns: process groups (CpuMeter) in this order, then any others.
CPU_GROUPS = ("web", "worker", "postgres", "redis", "smtp-sink", "load generator")


def _phase_order(phase: str) -> tuple[str, int]:
    """W1, then W2 by size (the key carries it: "W2 at 10,000"), then W3."""
    digits = "".join(c for c in phase[2:] if c.isdigit())
    return phase[:2], int(digits or 0)


def cpu_table(results: dict[str, dict[str, Any]], names: list[str]) -> list[str]:
    """Milliseconds of CPU per operation by process group, per measured phase and server:
    where each server's time goes (an operation: a user of W1, a request of W2 and W3).
    "web" is the server's HTTP processes (gunicorn's and its workers, or scim2-server's)."""
    phases: list[str] = []
    for n in names:
        phases += [k for k in results[n].get("cpu", {}) if k not in phases]
    phases.sort(key=_phase_order)
    if not phases:
        return []
    used = {g for n in names for entry in results[n].get("cpu", {}).values()
            for g, seconds in entry["seconds"].items() if seconds > 0}
    groups = [g for g in CPU_GROUPS if g in used] + sorted(used - set(CPU_GROUPS))
    lines = ["CPU per operation (ms; all processes of a group, summed over the phase, divided "
             "by its operations; PostgreSQL and Redis machine-wide), and the PostgreSQL WAL "
             "written per operation (KiB; more in a phase a checkpoint began in: the notes):",
             "", "| phase | server | " + " | ".join(groups) + " | all | WAL KiB |",
             "|" + "---|" * (len(groups) + 4)]
    for phase in phases:
        for n in names:
            entry = results[n].get("cpu", {}).get(phase)
            if not entry or not entry["ops"]:
                continue
            per_op = {g: 1000 * sec / entry["ops"] for g, sec in entry["seconds"].items()}
            cells = [f"{per_op[g]:.2f}" if g in per_op else "-" for g in groups]
            wal = f"{entry['wal_kib'] / entry['ops']:.1f}" if "wal_kib" in entry else "-"
            lines.append(f"| {phase} | {n} | " + " | ".join(cells)
                         + f" | {sum(per_op.values()):.2f} | {wal} |")
    return [*lines, ""]


def write_reports(results: dict[str, dict[str, Any]], sizes: wl.Sizes,
                  meta: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = render(results, sizes, meta)
    stamp = meta["date"].replace(":", "").replace(" ", "-")
    md = RESULTS / f"results-{stamp}-{meta['mode']}.md"
    title = f"# Benchmark results ({meta['mode']})\n\n"
    md.write_text(title + table)
    (RESULTS / "results-latest.md").write_text(title + table)
    payload = {"meta": meta, "sizes": sizes.__dict__, "results": results,
               "targets": targets(results, sizes)}
    (RESULTS / f"results-{stamp}-{meta['mode']}.json").write_text(
        json.dumps(payload, indent=2, default=str))
    if README.exists():
        text = README.read_text()
        if MARK_START in text and MARK_END in text:
            before, rest = text.split(MARK_START, 1)
            _, after = rest.split(MARK_END, 1)
            README.write_text(f"{before}{MARK_START}\n{table}{MARK_END}{after}")
    return md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 s phases: about 85 s")
    parser.add_argument("--only", default=",".join(DEFAULT_ORDER),
                        help=f"servers, comma-separated (default: {','.join(DEFAULT_ORDER)})")
    parser.add_argument("--workloads", default=",".join(ALL_WORKLOADS),
                        help="workloads, comma-separated (default: all)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the workloads")
    parser.add_argument("--sequential", action="store_true",
                        help="run each server's workloads to their end before the next server "
                             "starts its (default: the servers take turns, a phase each)")
    parser.add_argument("--no-bulk-seed", action="store_true",
                        help="in full mode, skip W2 at 100,000 users for a server that must be "
                             "grown through /Bulk (scim2-server; saves about 2 minutes)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown:
        parser.error(f"unknown servers {unknown}; choose from {list(SERVERS)}")
    selected = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    if bad := [w for w in selected if w not in ALL_WORKLOADS]:
        parser.error(f"unknown workloads {bad}")
    sizes = wl.QUICK if args.quick else wl.FULL
    raw_dir = RESULTS / "raw" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw_dir.mkdir(parents=True, exist_ok=True)
    gconf: dict[str, Any] = {"__file__": str(BENCH / "gunicorn.conf.py")}
    exec(compile((BENCH / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), gconf)  # noqa: S102
    meta = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "mode": "quick" if args.quick else "full",
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
                   f"{platform.python_version()}",
        "gunicorn": f"{gconf['worker_class']} {gconf['workers']} workers x "
                    f"{gconf['threads']} threads, <= {gconf['worker_connections']} connections "
                    f"each",
        "load_generator": http_parser(),
        "workloads": selected,
        "servers": names,
    }
    if not C_PARSER:
        print(f"warning: {meta['load_generator']}: the load generator may be the bottleneck",
              flush=True)
    started = time.perf_counter()
    results = run_servers(names, raw_dir, (sizes, selected, args.seed, not args.no_bulk_seed),
                          args.sequential)
    meta["duration_s"] = round(time.perf_counter() - started, 1)
    md = write_reports(results, sizes, meta)
    print(f"\nwrote {md} and {RESULTS / 'results-latest.md'} ({meta['duration_s']:.0f}s)\n")
    print((RESULTS / "results-latest.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
