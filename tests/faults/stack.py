"""A private, throwaway stack for fault tests: a PostgreSQL cluster (initdb + pg_ctl in a temp
dir, on a free port), a redis-server (no persistence) and gunicorn with two workers, all on
127.0.0.1. The fault tests stop, restart and kill THESE, never the machine's shared services.

Every process runs in its own process group and is killed when the stack closes, test failure
or not. PostgreSQL refuses to run as root: as root, the cluster runs as the ``postgres`` user
(``runuser``), with the data directory owned by it.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.fixtures_worker import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    assert path, f"{name} not found: install Debian's postgresql"
    return path


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class PrivatePostgres:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="wt-fault-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres([_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U",
                          "postgres", "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8"]),
            check=True, capture_output=True, timeout=60,
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/workteam"

    def _ctl(self, *args: str, timeout: float = 30) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=60")
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                          "-o", options, "-w", "-t", str(int(timeout)), *args]),
            check=True, capture_output=True, timeout=timeout + 10,
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def create_database(self) -> None:
        admin = self.url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE workteam")

    def close(self) -> None:
        try:
            self.stop("immediate")
        except Exception:  # noqa: S110 (already stopped)
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        import redis

        def up() -> bool:
            try:
                return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
            except redis.RedisError:
                return False

        wait_until(up, timeout=15)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    close = stop


@dataclass
class Response:
    status: int  # 0: no HTTP answer (connection refused, reset, timed out)
    body: Any = None
    headers: dict = field(default_factory=dict)
    error: str | None = None


class Http:
    """A small HTTP client for one thread: one connection at a time, timeouts, no retries."""

    def __init__(self, port: int, token: str | None = None, timeout: float = 10) -> None:
        self.port, self.token, self.timeout = port, token, timeout

    def request(self, method: str, path: str, body: Any = None) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        headers = {"Content-Type": "application/scim+json", "Connection": "close"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            conn.request(method, path, None if body is None else json.dumps(body), headers)
            raw = conn.getresponse()
            data = raw.read()
            try:
                parsed = json.loads(data) if data else None
            except ValueError:
                parsed = data.decode(errors="replace")
            return Response(raw.status, parsed, dict(raw.getheaders()))
        except OSError as exc:
            return Response(0, error=type(exc).__name__)
        except http.client.HTTPException as exc:
            return Response(0, error=type(exc).__name__)
        finally:
            conn.close()


class Gunicorn:
    def __init__(self, env: dict[str, str], workers: int = 2) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="wt-fault-web-"))
        self.metrics_dir = self.dir / "prometheus"
        self.metrics_dir.mkdir()
        self.env = {**os.environ, **env, "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
                    "PYTHONUNBUFFERED": "1"}
        # The deployed settings (gunicorn.conf.py: gthread, 4 threads), fewer processes.
        self.args = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                     "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
                     "--graceful-timeout", "5", "web:create_app()"]
        self.log_path = self.dir / "gunicorn.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log()[-3000:]
            return Http(self.port, timeout=2).request("GET", "/healthz").status == 200

        wait_until(up, timeout=30, interval=0.2)
        wait_until(lambda: len(self.workers()) == 2, timeout=30)

    def workers(self) -> list[int]:
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    close = stop
