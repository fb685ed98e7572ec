"""The worker's CPU priority, for a host it shares with the web processes (WORKTEAM_WORKER_NICE,
default 0: the web's priority).

An identity provider waits on every SCIM request; the worker's follow-up work (welcome mails,
license checks, manager references) is asynchronous and can wait. With the worker at niceness
10, a first sync of 10,000 users ran 13-73 % faster as the IdP sees it and its slowest requests
took half as long, but the follow-up work ran on for 14-28 s after the last request, everything
was done up to 15 % later (alone, the worker catches up in one process), and W3's PUTs ran 7 %
slower on average (bench/README.md, "The worker's priority"). It is a trade, so it is off by
default: an operator who wants first syncs to finish sooner turns it on.

Linux schedules by session first ("autogroup") when processes are not in a cgroup of their
own, so a process's niceness counts only against processes of its own session. A worker that
leads its session (the Procfile's ``exec celery``, under honcho or a supervisor) therefore
lowers its session's weight too; one that shares a session with other processes lowers only
its own threads. In containers and systemd units, which are cgroups, the weight is the
cgroup's: ``cpu_shares`` in docker-compose, ``CPUWeight=`` in a unit.
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
