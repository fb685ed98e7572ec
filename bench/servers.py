"""The servers under test: how each is installed, started, seeded, measured and stopped.

Every server listens on 127.0.0.1 only. Each start gets a fresh database (or, for
scim2-server, a fresh process: its storage is in memory) and a random bearer token.
Processes are started in their own session (process group) and stopped by that group's id.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / "peers"
REPO = BENCH.parent
PG_URL = "postgresql://postgres@127.0.0.1:5432/{db}"
SETUP_TIMEOUT_S = 600
READY_TIMEOUT_S = 90


SMTP_SINK_PORT = 18125
# Processes a server is started with that stand in for its deployment's environment (a mail
# relay): their CPU is shown as a group of its own, their memory is not the server's.
ENVIRONMENT_TAGS = frozenset({"smtp-sink"})


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, seconds: float = 15.0) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        time.sleep(0.1)
    return False


def ensure_free(port: int, what: str) -> None:
    """Refuse to start on a port something already answers on: a server left over by an
    interrupted run would be measured in place of the one just started."""
    if port_open(port):
        raise ServerError(f"{what}: 127.0.0.1:{port} is already in use (a process left over "
                          f"by an earlier run?); stop it first")


class ServerError(RuntimeError):
    """A server that could not be installed, prepared or started."""


def fresh_db(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL.format(db="postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (gunicorn's workers, Celery's pool); [] once gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class RssSampler:
    """Samples the summed memory of some process trees every ``interval`` seconds; keeps the
    peaks of two sums. RSS counts a page shared by several processes (gunicorn workers, Celery's
    pool children: forked from one parent) once in each of them; PSS divides it among them, so
    the PSS sum is the memory these processes take from the machine. ``roots``: each tree's
    root pid and its tag ("web", "worker"); the peaks of each tag's own sums are kept too."""

    def __init__(self, roots: dict[int, str], interval: float = 0.25):
        self.roots = dict(roots)
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self.peak_by_tag: dict[str, tuple[int, int]] = {}  # tag -> (peak RSS, peak PSS)
        self.last = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        # Cleared while other servers take their turn (run.py): an idle server's memory does
        # not grow, and reading smaps costs the load generator's process CPU.
        self._active = threading.Event()
        self._active.set()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> int:
        total = 0
        pss = 0
        count = 0
        by_tag: dict[str, list[int]] = {}
        for root, tag in self.roots.items():
            procs = process_tree(root)
            if not procs:
                continue
            sums = by_tag.setdefault(tag, [0, 0])
            for p in procs:
                try:
                    full = p.memory_full_info()
                except psutil.NoSuchProcess:
                    continue
                total += full.rss
                pss += full.pss
                sums[0] += full.rss
                sums[1] += full.pss
                count += 1
        self.last = total
        if total > self.peak:
            self.peak = total
            self.peak_processes = count
        self.peak_pss = max(self.peak_pss, pss)
        for tag, (rss, tag_pss) in by_tag.items():
            old = self.peak_by_tag.get(tag, (0, 0))
            self.peak_by_tag[tag] = (max(old[0], rss), max(old[1], tag_pss))
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._active.is_set():
                self.sample()
            self._stop.wait(self.interval)

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def pause(self) -> None:
        self._active.clear()
        self.sample()

    def resume(self) -> None:
        self._active.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class CpuMeter:
    """CPU seconds used so far by process group: the server's own processes by the tag each
    was spawned with (children included: gunicorn's workers), the environment's (PostgreSQL,
    Redis, an SMTP sink) and this process (the load generator, with the samplers' threads).

    PostgreSQL and Redis are counted machine-wide, so other work on the machine would show
    there. A snapshot holds each process's CPU so far; ``since`` adds up, per group, what each
    process used between two snapshots (a process started in between counts from zero, one
    that exited in between takes what it used with it: without the per-process difference a
    PostgreSQL backend that exited after a long life made a phase's sum negative)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.me = psutil.Process()

    def snapshot(self) -> dict[tuple[str, int, float], float]:
        """(group, pid, process start time) -> CPU seconds used so far."""
        out: dict[tuple[str, int, float], float] = {}

        def add(group: str, procs: Iterable[psutil.Process]) -> None:
            for proc in procs:
                try:
                    times = proc.cpu_times()
                    out[(group, proc.pid, proc.create_time())] = times.user + times.system
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass

        for proc in self.server.procs:
            add(self.server.tags[proc.pid], process_tree(proc.pid))
        for proc in psutil.process_iter(["name"]):
            name = proc.info["name"] or ""
            if name.startswith("postgres"):
                add("postgres", [proc])
            elif name.startswith("redis-server"):
                add("redis", [proc])
        add("load generator", [self.me])
        return out

    @staticmethod
    def total(snapshot: dict[tuple[str, int, float], float], group: str) -> float:
        return sum(cpu for (name, _, _), cpu in snapshot.items() if name == group)

    @staticmethod
    def since(
        before: dict[tuple[str, int, float], float], after: dict[tuple[str, int, float], float]
    ) -> dict[str, float]:
        """CPU seconds per group between the two snapshots."""
        out: dict[str, float] = {}
        for key, cpu in after.items():
            out[key[0]] = out.get(key[0], 0.0) + cpu - before.get(key, 0.0)
        return out


class WebSpread:
    """How a phase's load spread over the server's web processes: each one's CPU (in cores,
    over the phase) and its established client connections (sampled every second; the
    sample with the most connections is kept). The load generator's clients keep their
    connections alive for the whole phase, and gunicorn hands each new connection to whichever
    worker accepts it first, so one phase can give a worker 7 of the 16 connections and
    another 1: that worker is then bound by its own GIL while the machine idles."""

    def __init__(self, roots: dict[int, str], port: int, interval: float = 1.0):
        self.port = port
        self.interval = interval
        self.procs = [p for pid, tag in roots.items() if tag == "web" for p in process_tree(pid)]
        self.connections: list[int] = []
        self._cpu0: dict[int, float] = {}
        self._t0 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _cpu(self) -> dict[int, float]:
        out = {}
        for p in self.procs:
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return out

    def _count(self) -> list[int]:
        counts = []
        for p in self.procs:
            try:
                conns = p.net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            counts.append(sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED
                              and c.laddr and c.laddr.port == self.port))
        return sorted(counts, reverse=True)

    def start(self) -> None:
        self._cpu0, self._t0 = self._cpu(), time.perf_counter()
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=10)
        wall = max(time.perf_counter() - self._t0, 1e-9)
        cores = sorted((round((cpu - self._cpu0.get(pid, 0.0)) / wall, 2)
                        for pid, cpu in self._cpu().items()), reverse=True)
        return {"process_cores": cores, "connections": self.connections}

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            counts = self._count()
            if sum(counts) > sum(self.connections):
                self.connections = counts


class WalMeter:
    """PostgreSQL's WAL bytes and checkpoints so far (the whole cluster: the other servers are
    idle during a phase). After a checkpoint, the first change to each page writes the whole
    page to the WAL, so a phase that a checkpoint began in writes several times the WAL per
    operation, and its writes cost PostgreSQL more: measured in one process on ours' database,
    7.1-7.6 KiB per W3 PUT right after a CHECKPOINT against 1.2 KiB without one. With this
    PostgreSQL's settings (max_wal_size 1 GB, checkpoint_timeout 5 min) a full run begins one
    every 3-5 minutes, at no fixed point of any phase."""

    _QUERY = ("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, "
              "checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")

    @classmethod
    def snapshot(cls) -> tuple[int, int]:
        import psycopg

        with psycopg.connect(PG_URL.format(db="postgres"), autocommit=True) as conn:
            wal, checkpoints = conn.execute(cls._QUERY).fetchone()
        return int(wal), int(checkpoints)

    @staticmethod
    def since(before: tuple[int, int], after: tuple[int, int], ops: int) -> dict[str, Any]:
        return {"kib_per_op": round((after[0] - before[0]) / 1024 / max(ops, 1), 2),
                "checkpoints": after[1] - before[1]}


class WaitSampler:
    """What a server's PostgreSQL backends were doing during a phase: ``pg_stat_activity``
    read every ``interval`` seconds, each active backend counted by its wait event ("CPU" when
    it waits on nothing), and the backends idle inside a transaction. A phase that leaves the
    machine partly idle waited on something; this says whether it was PostgreSQL (a lock, the
    WAL flush) and which. One cheap query a few times a second, from its own thread."""

    _QUERY = """
        SELECT state, wait_event_type, wait_event FROM pg_stat_activity
        WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'
    """

    def __init__(self, db: str, interval: float = 0.2):
        self.db = db
        self.interval = interval
        self.samples = 0
        self.waits: dict[str, int] = {}
        self.idle_in_transaction = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        """Stop; the phase's figures: samples, mean active backends, waits by share."""
        self._stop.set()
        self._thread.join(timeout=10)
        active = sum(self.waits.values())
        n = max(self.samples, 1)
        return {
            "samples": self.samples,
            "active_backends": round(active / n, 2),
            "idle_in_transaction": round(self.idle_in_transaction / n, 2),
            # Share of the active backends' samples per wait, largest first.
            "waits": {k: round(v / max(active, 1), 3)
                      for k, v in sorted(self.waits.items(), key=lambda kv: -kv[1])},
            **({"error": self.error} if self.error else {}),
        }

    def _loop(self) -> None:
        import psycopg

        try:
            with psycopg.connect(PG_URL.format(db="postgres"), autocommit=True) as conn:
                while not self._stop.is_set():
                    for state, kind, event in conn.execute(self._QUERY, (self.db,)):
                        if state == "active":
                            key = f"{kind}:{event}" if kind else "CPU"
                            self.waits[key] = self.waits.get(key, 0) + 1
                        elif state == "idle in transaction":
                            self.idle_in_transaction += 1
                    self.samples += 1
                    self._stop.wait(self.interval)
        except Exception as exc:  # a dropped database at the end of a run, and the like
            self.error = f"{type(exc).__name__}: {exc}"


class Autovacuum:
    """PostgreSQL's autovacuum, run by the bench on one server's database.

    This machine's PostgreSQL runs with ``autovacuum = off`` (a CI setting in its conf.d); a
    deployment runs it on. Without it, a table that grew from empty in the run keeps the
    planner statistics of an empty table (an organization of 10,000 users is planned as 41
    rows) and no visibility map (no index-only scans), which is not what a user's database
    would do. So every PostgreSQL-backed server gets the same emulation: every ``naptime``
    seconds, autovacuum's own rules with its default settings, throttled by its default cost
    delay: ANALYZE a table once rows changed since its last analyze exceed 50 + 10% of its
    rows; VACUUM it once rows inserted since its last vacuum exceed 1,000 + 20%, or dead rows
    50 + 20%.
    """

    _TABLES = """
        SELECT s.relname, greatest(c.reltuples, 0), s.n_mod_since_analyze,
               s.n_ins_since_vacuum, s.n_dead_tup
        FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    """

    def __init__(self, db: str, log: Path, naptime: float = 60.0):
        self.db = db
        self.log = log
        self.naptime = naptime
        self.runs = 0
        # (monotonic start, end, what): a phase it overlapped is noted (run.autovacuum_notes).
        self.history: list[tuple[float, float, str]] = []
        self._stop = threading.Event()
        # Paused while other servers take their turn (run.py), so that this database's
        # maintenance never runs in their phases; ``resume`` does what fell due meanwhile.
        self._paused = False
        self._due = False
        self._lock = threading.Lock()  # held by a pass: ``pause`` waits for one in flight
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        """Run the pass that fell due while paused (before the server's phase starts, as a
        real autovacuum would have run it while the database was idle), then go on."""
        with self._lock:
            self._paused = False
            if self._due:
                self._due = False
                self._pass()

    def _loop(self) -> None:
        while not self._stop.wait(self.naptime):
            with self._lock:
                if self._paused:
                    self._due = True
                else:
                    self._pass()

    def _pass(self) -> None:
        try:
            self.run_once()
        except Exception as exc:  # a dropped database at the end of a run, and the like
            with self.log.open("a") as out:
                out.write(f"{time.strftime('%H:%M:%S')} error: {exc}\n")

    def run_once(self) -> None:
        import psycopg

        with psycopg.connect(PG_URL.format(db=self.db), autocommit=True) as conn:
            conn.execute("SET vacuum_cost_delay = '2ms'")  # autovacuum_vacuum_cost_delay
            conn.execute("SET vacuum_cost_limit = 200")
            for name, rows, modified, inserted, dead in conn.execute(self._TABLES).fetchall():
                vacuum = inserted > 1000 + 0.2 * rows or dead > 50 + 0.2 * rows
                analyze = modified > 50 + 0.1 * rows
                if not (vacuum or analyze):
                    continue
                # PARALLEL 0: autovacuum never vacuums a table's indexes with parallel
                # workers; a plain VACUUM did here (users has 16 indexes), which showed as
                # IPC:ParallelFinish waits in a W2 phase.
                command = "VACUUM (ANALYZE, PARALLEL 0)" if vacuum and analyze else (
                    "VACUUM (PARALLEL 0)" if vacuum else "ANALYZE")
                t0 = time.monotonic()
                conn.execute(f'{command} "{name}"')
                self.runs += 1
                self.history.append((t0, time.monotonic(), f"{command.split()[0]} {name}"))
                with self.log.open("a") as out:
                    out.write(f"{time.strftime('%H:%M:%S')} {command} {name} ({int(rows)} rows"
                              f" before): {time.monotonic() - t0:.2f}s\n")


    def during(self, start: float, end: float) -> list[str]:
        """What ran between ``start`` and ``end`` (monotonic), with the seconds of each that
        fell in that window."""
        return [f"{what} {min(t1, end) - max(t0, start):.1f} s" for t0, t1, what in self.history
                if t0 < end and t1 > start]


class Server:
    """A server under test. Subclasses set the class attributes and override the hooks."""

    name = ""
    label = ""
    port = 0
    setup_script: str | None = None
    db: str | None = None  # its PostgreSQL database, if it has one
    # Workloads only our service answers (W6, W7).
    ours_only_workloads = False

    def __init__(self, raw_dir: Path):
        self.raw_dir = raw_dir
        self.token = secrets.token_urlsafe(24)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tags: dict[int, str] = {}  # pid -> the tag it was spawned with
        self.logs: list[Any] = []
        self.notes: list[str] = []
        self.seeded_by = "http"

    # -- life cycle -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def install(self) -> None:
        if self.setup_script is None:
            return
        log = self.raw_dir / f"{self.name}-setup.log"
        with log.open("wb") as out:
            rc = subprocess.run(
                ["bash", str(PEERS / self.setup_script)],
                stdout=out, stderr=subprocess.STDOUT, timeout=SETUP_TIMEOUT_S, check=False,
            ).returncode
        if rc != 0:
            raise ServerError(f"{self.setup_script} failed, see {log}")

    def spawn(self, argv: list[str], tag: str, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        log = (self.raw_dir / f"{self.name}-{tag}.log").open("ab")
        self.logs.append(log)
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            cwd=cwd, start_new_session=True,
        )
        self.procs.append(proc)
        self.tags[proc.pid] = tag
        return proc

    def start(self) -> None:
        raise NotImplementedError

    def wait_ready(self) -> None:
        """Wait until an authenticated userName lookup answers 200."""
        query = urllib.parse.urlencode({"filter": 'userName eq "ready-probe@bench.example"'})
        url = f"{self.base_url}/Users?{query}"
        auth = {"Authorization": f"Bearer {self.token}"}
        req = urllib.request.Request(url, headers=auth)  # noqa: S310 (http://127.0.0.1 only)
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise ServerError(f"{self.name}: {shlex.join(map(str, proc.args))} exited "
                                      f"with {proc.returncode}; see {self.raw_dir}")
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
                    last = f"status {resp.status}"
            except urllib.error.HTTPError as exc:
                last = f"status {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.25)
        raise ServerError(f"{self.name} not ready after {READY_TIMEOUT_S}s: {last}")

    def roots(self) -> dict[int, str]:
        """The running processes of the server itself (not those of ENVIRONMENT_TAGS), with
        their tags."""
        return {p.pid: self.tags[p.pid] for p in self.procs
                if p.poll() is None and self.tags[p.pid] not in ENVIRONMENT_TAGS}

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        for log in self.logs:
            log.close()
        self.procs.clear()
        self.tags.clear()
        self.logs.clear()

    # -- hooks ------------------------------------------------------------------------
    def seed_direct(self, users: list[dict[str, Any]]) -> bool:
        """Insert users straight into the server's own tables; False if it cannot."""
        return False

    def bulk_seed_supported(self) -> bool:
        return False

    def settle(self, max_seconds: float) -> tuple[float, int]:
        """Wait until the follow-up work of earlier writes is done (a server with background
        work); return (seconds waited, work items still pending). Peers have none."""
        return 0.0, 0


class Ceiling(Server):
    name = "ceiling"
    label = "ceiling (Flask + 1 SQL statement)"
    port = 18101
    setup_script = "setup_ceiling.sh"
    db = "bench_ceiling"

    def start(self) -> None:
        self.spawn(["bash", str(PEERS / "run_ceiling.sh"), str(self.port)], "web",
                   env={"BENCH_TOKEN": self.token, "BENCH_DB": self.db})
        self.wait_ready()

    def seed_direct(self, users: list[dict[str, Any]]) -> bool:
        import psycopg
        from psycopg.types.json import Jsonb

        with psycopg.connect(PG_URL.format(db=self.db)) as conn:
            with conn.cursor().copy(
                "COPY users (org, user_name, active, data) FROM STDIN"
            ) as copy:
                for u in users:
                    copy.write_row((1, u["userName"], True, Jsonb(u)))
            conn.execute("ANALYZE users")
        self.seeded_by = "db"
        return True


class DjangoScim2(Server):
    name = "django-scim2"
    label = "django-scim2"
    port = 18103
    setup_script = "setup_django_scim2.sh"
    db = "bench_django_scim2"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/scim/v2"

    def start(self) -> None:
        self.spawn(["bash", str(PEERS / "run_django_scim2.sh"), str(self.port)], "web",
                   env={"BENCH_TOKEN": self.token, "BENCH_DB": self.db})
        self.wait_ready()

    def seed_direct(self, users: list[dict[str, Any]]) -> bool:
        import psycopg

        with psycopg.connect(PG_URL.format(db=self.db)) as conn:
            with conn.cursor().copy(
                "COPY benchusers_user (password, is_superuser, username, first_name, last_name,"
                " email, is_staff, is_active, date_joined, scim_external_id, scim_username)"
                " FROM STDIN"
            ) as copy:
                for u in users:
                    copy.write_row((
                        "", False, u["userName"], u["name"]["givenName"],
                        u["name"]["familyName"], u["emails"][0]["value"], False, True,
                        "2026-01-01T00:00:00Z", u["externalId"], u["userName"],
                    ))
            conn.execute("UPDATE benchusers_user SET scim_id = id::text WHERE scim_id IS NULL")
            conn.execute("ANALYZE benchusers_user")
        self.seeded_by = "db"
        return True


class Scim2Server(Server):
    name = "scim2-server"
    label = "scim2-server (in memory)"
    port = 18102
    setup_script = "setup_scim2_server.sh"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    def start(self) -> None:
        self.spawn(["bash", str(PEERS / "run_scim2_server.sh"), str(self.port)], "web",
                   env={"BENCH_TOKEN": self.token})
        self.wait_ready()
        self.notes.append(
            "scim2-server has no PostgreSQL storage: it runs as its docs say (the "
            "`scim2-server` command: one process, a thread per request, in-memory storage)."
        )

    def bulk_seed_supported(self) -> bool:
        return True


class Ours(Server):
    """Our service as the Procfile deploys it: gunicorn "web:create_app()" + a Celery worker.

    Contract (bench/README.md): `flask --app web db upgrade`; `flask --app web org create
    NAME --plan paid --seats 1000000` prints JSON with "id"; `flask --app web scim token
    ORG_ID` prints JSON with "base_url" and "token".
    """

    name = "ours"
    label = "ours (Workteam)"
    port = 18104
    db = "bench_ours"
    ours_only_workloads = True
    redis_url = "redis://127.0.0.1:6379/14"

    def __init__(self, raw_dir: Path):
        super().__init__(raw_dir)
        self.org_id = ""
        self._base_url = ""
        venv = REPO / ".venv" / "bin"
        self.venv = venv
        self.env = {
            "DATABASE_URL": PG_URL.format(db=self.db),
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            # A real SMTP server that accepts and discards (started with the service): a
            # deployment has one, and a refused connection would make every welcome mail
            # retry, costing the worker CPU the web processes need.
            "SMTP_URL": f"smtp://127.0.0.1:{SMTP_SINK_PORT}",
            # One token sends every request here: a limit that is never reached, so the
            # limiter's Redis round trip is measured but never refuses (peers have none).
            "WORKTEAM_RATE_LIMIT": "1000000",
            "PATH": f"{venv}:{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(REPO / ".venv"),
        }

    @property
    def base_url(self) -> str:
        return self._base_url or f"http://127.0.0.1:{self.port}/scim/v2/{self.org_id}"

    def env_all(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def flask(self, *args: str, timeout: float = 300) -> str:
        argv = [str(self.venv / "flask"), "--app", "web", *args]
        proc = subprocess.run(argv, cwd=REPO, env={**os.environ, **self.env}, timeout=timeout,
                              capture_output=True, text=True, check=False)
        with (self.raw_dir / f"{self.name}-cli.log").open("a") as log:
            log.write(f"$ {shlex.join(argv)}\n{proc.stdout}{proc.stderr}rc={proc.returncode}\n")
        if proc.returncode != 0:
            raise ServerError(f"ours: `{shlex.join(argv[1:])}` failed (rc {proc.returncode}): "
                              f"{(proc.stderr or proc.stdout).strip()[-500:]}")
        return proc.stdout

    @staticmethod
    def last_json(text: str) -> dict[str, Any]:
        """The last line of ``text`` that parses as a JSON object (CLI output may log first)."""
        for line in reversed(text.strip().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ServerError(f"ours: no JSON object in CLI output: {text[-300:]!r}") from exc

    def start(self) -> None:
        import redis

        if not (self.venv / "gunicorn").exists():
            raise ServerError(f"ours: {self.venv}/gunicorn missing; pip install -e '.[bench]'")
        redis.Redis.from_url(self.redis_url).flushdb()
        fresh_db(self.db)
        self.flask("db", "upgrade")
        # A process of its own, so that its CPU is not the load generator's (CpuMeter).
        ensure_free(SMTP_SINK_PORT, "the SMTP sink")
        self.spawn([str(self.venv / "python"), "-m", "aiosmtpd", "-n", "-c",
                    "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{SMTP_SINK_PORT}"], "smtp-sink")
        if not wait_for_port(SMTP_SINK_PORT):
            raise ServerError(f"ours: the SMTP sink did not listen on {SMTP_SINK_PORT}")
        self.spawn([str(self.venv / "gunicorn"), "-c", str(BENCH / "gunicorn.conf.py"),
                    "-b", f"127.0.0.1:{self.port}", "web:create_app()"],
                   "web", env=self.env, cwd=REPO)
        self.spawn([str(self.venv / "celery"), "-A", "tasks.celery_app", "worker",
                    "--loglevel", "warning", "--pool", "threads", "--concurrency", "4"],
                   "worker", env=self.env, cwd=REPO)
        # The organization and its token while gunicorn and the worker boot (they need
        # neither): two CLI runs of ~1.6 s each that no longer add to the start.
        org = self.last_json(self.flask("org", "create", "bench", "--plan", "paid",
                                        "--seats", "1000000"))
        self.org_id = str(org["id"])
        tok = self.last_json(self.flask("scim", "token", self.org_id))
        self.token = tok["token"]
        self._base_url = str(tok.get("base_url") or "").rstrip("/")
        self.wait_ready()

    def bulk_seed_supported(self) -> bool:
        # W6 grows ours to 100,000 users in a full run; a run without W6 grows it through
        # /Bulk (or, with --no-bulk-seed, skips W2 at 100,000), not 90,000 single POSTs.
        return True

    def settle(self, max_seconds: float) -> tuple[float, int]:
        """Wait for the outbox to empty (welcome mails, license checks, manager passes of the
        users just written), so that a measured phase is not also doing that work."""
        import psycopg

        t0 = time.monotonic()
        with psycopg.connect(PG_URL.format(db=self.db), autocommit=True) as conn:
            while True:
                (left,) = conn.execute(
                    "SELECT count(*) FROM jobs WHERE state IN ('pending', 'running')"
                ).fetchone()
                if left == 0 or time.monotonic() - t0 > max_seconds:
                    return round(time.monotonic() - t0, 1), int(left)
                time.sleep(0.5)


SERVERS: dict[str, type[Server]] = {
    "ours": Ours,
    "ceiling": Ceiling,
    "scim2-server": Scim2Server,
    "django-scim2": DjangoScim2,
}
