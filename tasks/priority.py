"""The worker's CPU priority: below the web processes' on a host they share.

An identity provider waits on every SCIM request; the worker's follow-up work (welcome mails,
license checks, manager references) is asynchronous by design and can wait a few seconds. At
equal priority the worker and the mail server it feeds took about a quarter of the CPU of a
first sync of 10,000 users; with the worker at niceness 10 the sync ran 20-70 % faster, and its
follow-up work finished 14-28 s after the last request instead of 1-3 (bench/README.md, "The
worker's priority"). The work is the same; the worker does it when requests leave it the CPU.

Linux schedules by session first ("autogroup") when processes are not in a cgroup of their
own, so a process's niceness counts only against processes of its own session. A worker that
leads its session (the Procfile's, under honcho or a supervisor) therefore lowers its
session's weight too; one that shares a session with other processes lowers only its own
threads. In containers and systemd units, which are cgroups, the weight is the cgroup's:
docker-compose.yml gives the worker ``cpu_shares``, and a systemd unit takes ``CPUWeight=``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def lower_priority(niceness: int) -> None:
    """Raise this process's niceness to ``niceness`` (never lower it: that needs privilege), for
    every thread it has now (Linux sets it per thread; later threads inherit it), and its
    session's when it leads one. 0 or less: nothing."""
    if niceness <= 0:
        return
    tasks = Path("/proc/self/task")
    threads = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
        except OSError:
            pass  # the thread ended meanwhile
    autogroup = Path("/proc/self/autogroup")
    if os.getsid(0) == os.getpid() and autogroup.exists():
        try:
            autogroup.write_text(str(niceness))
        except OSError as exc:  # a kernel without autogroup, or a rate limit on changes
            log.info("session priority left unchanged: %s", exc)
    log.info("worker niceness %d (WORKTEAM_WORKER_NICE)", niceness)
