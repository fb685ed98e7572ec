"""The outbox bridge: publishing jobs after commit, running a job exactly to completion, and the
sweep that republishes what was left pending.

A job's task takes the job id as its only argument. ``run_job`` locks the row (SKIP LOCKED: a
duplicate delivery while the first is running leaves at once), does nothing if the job is not
pending, runs the handler in the same transaction and marks the job done in it — so the work and
"done" commit together, and a worker killed midway leaves the job pending for a redelivery (the
Redis visibility timeout, ``task_reject_on_worker_lost`` or the sweep, whichever comes first).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import smtplib
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from celery import Celery, Task, shared_task
from flask import current_app
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.db import any_of, utcnow
from models.jobs import (
    KIND_LICENSE_CHECK,
    KIND_MAIL,
    KIND_MANAGERS,
    KIND_MANAGERS_ORG,
    KIND_NOTIFY_DEACTIVATED,
    KIND_NOTIFY_DEACTIVATED_ORG,
    claim_coalesced,
    detach,
)
from models.outbox import JOB_PENDING, Job, SentMail, prune_from
from models.resync import prune_exports
from tasks import db, settings

log = logging.getLogger("workteam.outbox")

# Job kind -> Celery task name. Readable names: Flower lists tasks by them.
TASKS: dict[str, str] = {
    KIND_MANAGERS: "tasks.managers.resolve",
    KIND_MANAGERS_ORG: "tasks.managers.resolve_org",
    KIND_LICENSE_CHECK: "tasks.licenses.check",
    KIND_MAIL: "tasks.notifications.send",
    KIND_NOTIFY_DEACTIVATED: "tasks.notifications.deactivated",
    KIND_NOTIFY_DEACTIVATED_ORG: "tasks.notifications.deactivated_org",
    "groups.resolve_members": "tasks.groups.resolve_members",  # models.memberships.RESOLVE_KIND
}
# Organization-wide passes (models/jobs.py, coalesced jobs) start WORKTEAM_COALESCE_SECONDS
# after the write that made the job: a burst of writes joins the waiting job meanwhile, so one
# pass covers more of them (an initial sync made a pass per ~16 creates without the delay).
COALESCED_TASKS = frozenset({
    TASKS[KIND_MANAGERS_ORG], TASKS[KIND_LICENSE_CHECK], TASKS[KIND_NOTIFY_DEACTIVATED_ORG],
})
# Kinds with their own scheduler (the re-sync takes over stale runs itself): published, not swept.
OTHER_TASKS: dict[str, str] = {"resync": "tasks.resync.run"}

# A handler does the job's work in the given session (no commit) and returns the ids of the
# jobs it wrote, which are published after the commit.
Handler = Callable[[Session, Job], "list[int] | None"]

class JobRetry(Exception):
    """What Celery (and so Flower) sees of a transient failure: ids and the error's type only."""


class JobFailed(Exception):
    """What Celery sees of a permanent failure; the full error text is on the job row."""


def task_name(kind: str) -> str | None:
    return TASKS.get(kind) or OTHER_TASKS.get(kind)


# ------------------------------------------------------------------------------ publishing


def publish(job_ids: Iterable[int], kinds: Mapping[int, str] | None = None) -> None:
    """Publish jobs after their transaction committed. A broker failure leaves them pending for
    the sweep; it never fails the caller, and for a few seconds after one the broker is not
    tried at all, so requests stay fast while Redis is down. ``kinds`` (the writing session's
    ``info[jobs.ENQUEUED_KINDS]``) spares a read of the jobs; without it they are read, and if
    the database is gone by then the jobs are left to the sweep."""
    ids = [int(i) for i in job_ids if i is not None]
    if not ids:
        return
    if _is_down(_broker_key()):
        log.info("broker marked down; %d job(s) left for the sweep", len(ids))
        return
    known = kinds or {}
    pairs = [(i, known[i]) for i in ids if i in known]
    missing = [i for i in ids if i not in known]
    if missing:
        try:
            with db.session() as session:
                rows = session.execute(select(Job.id, Job.kind).where(any_of(Job.id, missing)))
                pairs += [(row.id, row.kind) for row in rows]
        except sa_exc.DBAPIError:
            log.warning("database unavailable after commit; %d job(s) left for the sweep",
                        len(missing))
    publish_kinds(pairs)


def publish_kinds(jobs: Iterable[tuple[int, str]], wait: float | None = None) -> int:
    """Send one message per (job id, kind); return how many were sent.

    The sending runs on a small thread pool and is waited for at most PUBLISH_TIMEOUT: the
    broker client's own reconnect retries (kombu's, then redis-py's) take seconds when Redis
    is down, and a SCIM request must not wait for them. A send still running after the wait
    may yet succeed; if not, its jobs stay pending for the sweep. ``wait`` overrides the wait
    (the sweep, which serves no request, waits for its sends)."""
    batch = [(job_id, name) for job_id, kind in jobs if (name := _named(job_id, kind))]
    key = _broker_key()
    if not batch or _is_down(key):
        return 0
    celery = current_app.extensions["celery"]
    backoff_s = settings.get_float("WORKTEAM_PUBLISH_BACKOFF_SECONDS")
    if wait is None:
        wait = float(current_app.config.get("PUBLISH_TIMEOUT", 0.5))
    # Queue names and delays are read here, in the app context (the sending thread has none).
    delay = settings.get_float("WORKTEAM_COALESCE_SECONDS") or None
    routed = [
        (job_id, name, settings.queue_for(name), delay if name in COALESCED_TASKS else None)
        for job_id, name in batch
    ]
    future = _pool().submit(_send_all, celery, key, routed, backoff_s)
    try:
        return future.result(timeout=wait)
    except FutureTimeout:
        # Slow is not down (a loaded host, a first connect): the send goes on in the pool and
        # usually succeeds; if it fails, it marks the broker down and the sweep takes over.
        log.info("publish still running after %.2fs; not waiting for it", wait)
        return 0


def _named(job_id: int, kind: str) -> str | None:
    name = task_name(kind)
    if name is None:
        log.error("job %s has unknown kind %r; not published", job_id, kind)
    return name


def _send_all(
    celery: Celery, key: str, batch: list[tuple[int, str, str, float | None]], backoff_s: float
) -> int:
    sent = 0
    for job_id, name, queue, countdown in batch:
        if _is_down(key):
            break  # queued behind a send that found the broker down: leave it to the sweep
        try:
            celery.send_task(name, args=[job_id], queue=queue, retry=False, countdown=countdown)
        except Exception as exc:  # any broker error: the job stays pending
            _down_until[key] = time.monotonic() + backoff_s
            log.warning("publish failed (%s: %s); jobs left pending for the sweep",
                        type(exc).__name__, exc)
            break
        sent += 1
    else:
        _down_until.pop(key, None)  # it got through: the broker is fine
    return sent


# Broker URL -> monotonic time until which publishing is skipped (a circuit breaker).
_down_until: dict[str, float] = {}
_executor: tuple[int, ThreadPoolExecutor] | None = None


def _broker_key() -> str:
    return str(current_app.extensions["celery"].conf.broker_url)


def _is_down(key: str) -> bool:
    return time.monotonic() < _down_until.get(key, 0.0)


def _pool() -> ThreadPoolExecutor:
    """One small pool per process (a forked worker child makes its own)."""
    global _executor
    if _executor is None or _executor[0] != os.getpid():
        _executor = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="outbox-publish"))
    return _executor[1]


def reset_broker_backoff() -> None:
    """Try the broker again at once (operators' commands, the sweep)."""
    _down_until.clear()


# --------------------------------------------------------------------------------- running


def is_transient(exc: BaseException) -> bool:
    """Failures worth retrying: the database or the SMTP server is unavailable for now."""
    if isinstance(exc, sa_exc.DBAPIError):
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) or bool(
            exc.connection_invalidated
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    return isinstance(exc, ConnectionError | TimeoutError | OSError) and not isinstance(
        exc, smtplib.SMTPException
    )


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter (half fixed, half random) for the ``attempt``-th failure."""
    base = settings.get_float("WORKTEAM_RETRY_BASE_SECONDS")
    cap = settings.get_float("WORKTEAM_RETRY_MAX_SECONDS")
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    return delay / 2 + random.uniform(0, delay / 2)


def run_job(task: Task, job_id: int, handler: Handler, *, coalesced: bool = False) -> str:
    """Run ``handler`` for the job once, to completion; see the module docstring. A
    ``coalesced`` job (models/jobs.py) is claimed first, in a statement of its own."""
    new_jobs: list[int] = []
    with db.session() as session:
        try:
            if coalesced:
                with db.autocommit() as connection:
                    claim_coalesced(connection, job_id)
            job = session.scalar(
                select(Job).where(Job.id == job_id).with_for_update(skip_locked=True)
            )
            if job is None:
                return "busy"  # being run elsewhere (or gone): nothing to do here
            if job.state != "pending":
                return "skipped"
            new_jobs = list(handler(session, job) or [])
            now = utcnow()
            job.state, job.error = "done", None
            job.attempts += 1
            job.updated = job.finished_at = now
            session.commit()
        except Exception as exc:
            session.rollback()
            _failed(task, job_id, exc)
            raise AssertionError("unreachable") from None
    publish(new_jobs)
    return "done"


def _failed(task: Task, job_id: int, exc: Exception) -> None:
    """Record a failure on the job row; retry transient failures with backoff (raises)."""
    transient = is_transient(exc)
    error = f"{type(exc).__name__}: {exc}"[:2000]
    max_attempts = settings.get_int("WORKTEAM_TASK_MAX_ATTEMPTS")
    state, attempts = "failed", max_attempts
    try:
        with db.session() as session:
            row = session.execute(
                select(Job.attempts).where(Job.id == job_id).with_for_update()
            ).first()
            attempts = (row.attempts if row else 0) + 1
            state = "pending" if transient and attempts < max_attempts else "failed"
            delay = backoff(attempts)
            now = utcnow()
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "pending")
                .values(
                    attempts=attempts,
                    error=error,
                    state=state,
                    updated=now,
                    # The sweep leaves a job alone until its next attempt is due.
                    published_at=now + dt.timedelta(seconds=delay),
                    finished_at=now if state == "failed" else None,
                )
            )
            if state == "failed":
                detach(session, job_id)  # a dead coalesced job takes no more writes
            session.commit()
    except sa_exc.SQLAlchemyError:
        # The database itself is down: retry without a limit (web/celery_ext.py: the tasks'
        # max_retries), with backoff on Celery's own count; the sweep is the backstop.
        delay = backoff(task.request.retries + 1)
        log.warning("job %s: could not record failure; retrying in %.1fs", job_id, delay)
        raise task.retry(
            countdown=delay,
            exc=JobRetry(f"job {job_id}: {type(exc).__name__}"),
            queue=settings.queue_for(task.name),
        ) from None
    if state == "pending":
        log.warning(
            "job %s attempt %d failed (%s); retry in %.1fs",
            job_id, attempts, type(exc).__name__, delay,
        )
        raise task.retry(
            countdown=delay,
            exc=JobRetry(f"job {job_id} attempt {attempts}: {type(exc).__name__}"),
            queue=settings.queue_for(task.name),
        ) from None
    # A permanent failure is a bug or bad data: keep the traceback in the worker's log.
    log.error(
        "job %s failed after %d attempt(s): %s", job_id, attempts, type(exc).__name__,
        exc_info=exc if not transient else None,
    )
    raise JobFailed(f"job {job_id} failed: {type(exc).__name__}") from None


# ----------------------------------------------------------------------------------- sweep


def republish_due(limit: int = 500, after: float | None = None) -> int:
    """Republish jobs pending for longer than WORKTEAM_REPUBLISH_AFTER_SECONDS (or whose retry
    is due); mark them published now so the next sweep leaves them alone for as long."""
    if after is None:
        after = settings.get_float("WORKTEAM_REPUBLISH_AFTER_SECONDS")
    cutoff = utcnow() - dt.timedelta(seconds=after)
    with db.session() as session:
        rows = list(
            session.execute(
                select(Job.id, Job.kind)
                .where(
                    JOB_PENDING,
                    Job.kind.in_(list(TASKS)),
                    func.coalesce(Job.published_at, Job.created) < cutoff,
                )
                .order_by(Job.created)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return 0
        session.execute(
            update(Job).where(any_of(Job.id, [r.id for r in rows])).values(published_at=utcnow())
        )
        session.commit()
    reset_broker_backoff()
    sent = publish_kinds(((r.id, r.kind) for r in rows), wait=60)
    log.info("sweep republished %d of %d pending job(s)", sent, len(rows))
    return sent


@shared_task(name="tasks.outbox.sweep", ignore_result=True)
def sweep() -> int:
    return republish_due()


# ------------------------------------------------------------------------------- retention

# One run stops after this; the next starts again from the oldest row (what this one deleted
# is gone).
PRUNE_RUN_SECONDS = 60


@shared_task(name="tasks.outbox.prune", ignore_result=True)
def prune() -> int:
    """Delete finished jobs and sent-mail records older than WORKTEAM_OUTBOX_RETENTION_DAYS
    (0 keeps them; what stays regardless: models/outbox.py), oldest first, each batch in a
    transaction of its own, then the re-sync exports uploaded before then (models/resync.py).
    Without it the two tables grow by about a row per user written, for ever, and every
    export (a directory's user names) stays. Returns how many rows went."""
    days = settings.get_float("WORKTEAM_OUTBOX_RETENTION_DAYS")
    if days <= 0:
        return 0
    cutoff = utcnow() - dt.timedelta(days=days)
    deadline = time.monotonic() + PRUNE_RUN_SECONDS
    total = 0
    for model in (Job, SentMail):
        start: int | None = None
        while time.monotonic() < deadline:
            with db.session() as session:
                deleted, start = prune_from(session, model, start, cutoff)
                session.commit()
            total += deleted
            if start is None:
                break
    with db.session() as session:
        total += prune_exports(session, cutoff)
        session.commit()
    if total:
        log.info("deleted %d finished job(s), mail record(s) and export(s) older than %s", total,
                 cutoff.isoformat())
    return total
