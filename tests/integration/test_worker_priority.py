"""WORKTEAM_WORKER_NICE puts the worker below the web processes' CPU priority (tasks/priority.py),
with real workers: every thread, forked pool processes, and the session it leads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fixtures_worker import QUEUE, ROOT, wait_until

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux /proc")


def thread_niceness(pid: int) -> set[int]:
    return {os.getpriority(os.PRIO_PROCESS, int(t.name))
            for t in Path(f"/proc/{pid}/task").iterdir()}


def thread_count(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def session_niceness(pid: int) -> int | None:
    """The niceness of the autogroup (session) of ``pid``: "/autogroup-42 nice 10"."""
    path = Path(f"/proc/{pid}/autogroup")
    return int(path.read_text().split()[-1]) if path.exists() else None


def test_a_worker_set_to_10_runs_with_its_session_at_niceness_10(start_worker, worker_app) -> None:
    queue = f"{QUEUE}-nice"  # its own: the run's other workers must not take the task below
    w = start_worker(env={"WORKTEAM_WORKER_NICE": "10", "WORKTEAM_CELERY_QUEUE": queue})
    pid = w.proc.pid
    # The threads pool starts a thread for a task when none is idle: run one so one exists.
    with worker_app.app_context():
        task_id = worker_app.extensions["celery"].send_task(
            "tasks.outbox.sweep", queue=queue).id
    wait_until(lambda: f"{task_id}] succeeded" in w.log(), timeout=30)
    assert thread_count(pid) >= 2  # the main thread and the pool thread that ran the task
    assert thread_niceness(pid) == {10}, w.log()[-2000:]
    if session_niceness(pid) is not None:
        assert os.getsid(pid) == pid  # started in a session of its own, as honcho does
        assert session_niceness(pid) == 10
    assert "worker niceness 10" in w.log()


def test_forked_pool_processes_inherit_it(start_worker) -> None:
    w = start_worker(pool="prefork", concurrency=1, env={"WORKTEAM_WORKER_NICE": "10"})
    children = w.children()
    assert children
    for child in children:
        assert thread_niceness(child) == {10}


def test_by_default_the_worker_keeps_the_web_priority(worker) -> None:
    assert thread_niceness(worker.proc.pid) == {os.getpriority(os.PRIO_PROCESS, 0)}
    if session_niceness(worker.proc.pid) is not None:
        assert session_niceness(worker.proc.pid) == 0
    assert "worker niceness" not in worker.log()


def run(code: str, *prefix: str) -> str:
    """``code``'s output, run by ``prefix`` in a session of its own."""
    argv = [*prefix, sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True,
                          start_new_session=True, timeout=30).stdout.strip()


CHECK = """
    import os, threading
    from pathlib import Path
    from tasks.priority import lower_priority

    started = threading.Event()
    before = threading.Thread(target=started.wait, daemon=True)
    before.start()
    lower_priority(10)
    after = threading.Thread(target=started.wait, daemon=True)
    after.start()
    tids = [int(t.name) for t in Path("/proc/self/task").iterdir()]
    nices = {os.getpriority(os.PRIO_PROCESS, tid) for tid in tids}
    print(sorted(nices), Path("/proc/self/autogroup").read_text().split()[-1])
    started.set()
"""


def test_threads_started_before_and_after_the_call_are_lowered() -> None:
    assert run(CHECK) == "[10] 10"


def test_a_process_that_shares_its_session_leaves_the_session_alone() -> None:
    # The session's leader is the shell here, which is not the worker: only the worker's own
    # threads go down, not the weight of a session that may hold the web processes too.
    out = run(CHECK, "sh", "-c", '"$@"; true', "sh")
    nices, session = out.split("] ")
    assert nices == "[10"
    assert session == "0"


def test_it_never_raises_a_priority_set_lower_before() -> None:
    assert run(CHECK, "nice", "-n", "15") == "[15] 10"
