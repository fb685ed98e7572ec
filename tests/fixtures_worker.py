"""Fixtures for the asynchronous half, with the real parts: a Celery worker subprocess on the
test Redis, bound to this run's own queue; an aiosmtpd server on a free 127.0.0.1 port that
keeps what it receives; an app whose SMTP_URL points at it.

Worker tests publish to the queue ``wt-<RUN_ID>``, which the worker fixtures consume. Every
other app of the run (the plain ``app`` fixture) publishes to ``wt-<RUN_ID>-idle``, set in the
environment here before any app is made: nobody consumes it, so tests without a worker see
no asynchronous changes, and no run ever takes another run's messages on the shared Redis
db. Both queues' keys are deleted when the run ends.
"""

from __future__ import annotations

import asyncio
import email
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask

from tests.conftest import REDIS_URL, RUN_ID, TEST_ENV

QUEUE = f"wt-{RUN_ID}"
os.environ["WORKTEAM_CELERY_QUEUE"] = f"{QUEUE}-idle"
ROOT = Path(__file__).resolve().parent.parent

# Fast retries and sweeps for tests; production defaults live in tasks/settings.py.
WORKER_SETTINGS = {
    "WORKTEAM_CELERY_QUEUE": QUEUE,
    "WORKTEAM_RETRY_BASE_SECONDS": "0.5",
    "WORKTEAM_RETRY_MAX_SECONDS": "2",
    "WORKTEAM_TASK_MAX_ATTEMPTS": "12",
    "WORKTEAM_SWEEP_SECONDS": "1",
    "WORKTEAM_REPUBLISH_AFTER_SECONDS": "30",
    "WORKTEAM_MANAGER_SWEEP_SECONDS": "3600",
    "WORKTEAM_LICENSE_SWEEP_SECONDS": "3600",
    "WORKTEAM_PUBLISH_BACKOFF_SECONDS": "1",
    "WORKTEAM_SMTP_TIMEOUT": "5",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout: float = 60, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check.__name__}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------ SMTP


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: Message

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        for part in self.message.walk():
            if part.get_content_type() == "text/plain":
                return part.get_payload(decode=True).decode()
        return ""


@dataclass
class MailSink:
    """aiosmtpd on 127.0.0.1:port. ``hold_rcpt`` makes the next RCPT wait until released
    (``rcpt_held`` is set when one waits) — a task stopped mid-send, before any data."""

    port: int
    messages: list[Received] = field(default_factory=list)
    hold_rcpt: threading.Event = field(default_factory=threading.Event)
    rcpt_held: threading.Event = field(default_factory=threading.Event)
    reject: set[str] = field(default_factory=set)  # addresses refused with 550 (permanent)
    controller: Controller | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_RCPT(self, server, session, envelope, address, options):
        while self.hold_rcpt.is_set():
            self.rcpt_held.set()
            await asyncio.sleep(0.02)
        if address.lower() in self.reject:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if address.lower() in
                    (r.lower() for r in m.rcpt_tos)]

    def to_any(self, addresses: set[str]) -> list[Received]:
        wanted = {a.lower() for a in addresses}
        with self.lock:
            return [m for m in self.messages if wanted & {r.lower() for r in m.rcpt_tos}]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[MailSink]:
    sink = MailSink(free_port())
    sink.start()
    yield sink
    sink.hold_rcpt.clear()
    sink.stop()


# ---------------------------------------------------------------------------------- worker


@pytest.fixture(scope="session")
def worker_env(database_url: str, smtp_server: MailSink) -> dict[str, str]:
    return {**TEST_ENV, **WORKER_SETTINGS, "SMTP_URL": smtp_server.url}


def make_worker_app(env: dict[str, str]) -> Flask:
    """An app publishing with ``env``'s settings (broker, queue) — the web side of a test."""
    from web import create_app

    settings = {k: v for k, v in env.items() if k.startswith("WORKTEAM_")}
    return create_app({"ENV_OVERRIDES": env, "TESTING": True, **settings})


@pytest.fixture(scope="session")
def worker_app(worker_env: dict[str, str]) -> Iterator[Flask]:
    """The app of worker tests: SMTP at the test server, this run's queue."""
    application = make_worker_app(worker_env)
    yield application
    application.extensions["db.engine"].dispose()


def _queues(queue: str) -> str:
    """A worker consumes its queue and the queue's mail queue (tasks/settings.py)."""
    return f"{queue},{queue}.mail"


class Worker:
    """``celery -A tasks.celery_app worker`` as a subprocess (its own process group)."""

    count = 0

    def __init__(self, env: dict[str, str], *, concurrency: int = 4, beat: bool = False,
                 pool: str = "threads") -> None:
        Worker.count += 1
        self.name = f"{QUEUE}-{Worker.count}"
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.log_path = self.tmp / "worker.log"
        self.args = [
            sys.executable, "-m", "celery", "-A", "tasks.celery_app", "worker",
            "-Q", _queues(env.get("WORKTEAM_CELERY_QUEUE", QUEUE)), "-n", f"{self.name}@%h",
            "--pool", pool, "--concurrency", str(concurrency), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle",
        ]
        if beat:
            self.args += ["-B", "--schedule", str(self.tmp / "beat-schedule")]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> Worker:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log()[-3000:]
            return " ready." in self.log()

        wait_until(ready, timeout=timeout, interval=0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def children(self) -> list[int]:
        """Pool process ids (prefork children of the main worker process)."""
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool): nothing gets to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()


@pytest.fixture(scope="session")
def worker(worker_env: dict[str, str], worker_app: Flask) -> Iterator[Worker]:
    """One worker as the Procfile runs it (threads pool, 4 threads) for the run's worker tests."""
    w = Worker(worker_env).start()
    yield w
    w.stop()


@pytest.fixture
def start_worker(worker_env: dict[str, str]) -> Iterator[Callable[..., Worker]]:
    """Start extra workers (killed or stopped by the test, stopped at its end regardless)."""
    started: list[Worker] = []

    def start(**kw: Any) -> Worker:
        env = {**worker_env, **kw.pop("env", {})}
        w = Worker(env, **kw).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture(scope="session", autouse=True)
def _delete_run_queue() -> Iterator[None]:
    """Delete this run's Celery keys from the shared Redis db when the run ends."""
    yield
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"*{QUEUE}*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass
    finally:
        client.close()
