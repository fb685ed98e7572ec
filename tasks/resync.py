"""Bulk re-sync of one organization: ``tasks.resync.run(job_id)``.

One pass over the organization's users in ``seq`` order, in batches; each batch re-resolves the
manager references that are not plainly consistent, compares the users with the IdP export
(if one was given) and applies the differences (unless a dry run), then commits with a
checkpoint (``jobs.result``: phase, last seq, counts). After the pass: licenses are recomputed
for the organization and failed mail is resent. A killed worker's job is taken over from its
last checkpoint once it has been silent for ``RESYNC_STALE_SECONDS`` (``sweep`` republishes it).

Progress goes to the job row (page, CLI, JSON), to the result backend (``PROGRESS`` state with
done/total) and as a ``task-progress`` event (Flower shows the state). Celery carries the job id
only.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from flask import current_app
from sqlalchemy import ColumnElement, Text, and_, cast, func, or_, select, union_all, update
from sqlalchemy.orm import Session, aliased

from models import licensing
from models import managers as m
from models import resync as r
from models.db import any_of, utcnow
from models.outbox import JOB_FAILED, JOB_PENDING, JOB_RUNNING, Job
from models.store import user_tally
from models.user import User
from tasks import heartbeat  # noqa: F401 (connects the worker heartbeat signal)
from tasks.licenses import reconcile_org

log = logging.getLogger("workteam.resync")

TASK_NAME = "tasks.resync.run"


def _session() -> Session:
    from tasks import db

    return db.session()


def _conf(name: str, default: Any) -> Any:
    value = current_app.config.get(name)
    if value in (None, ""):
        value = os.environ.get(name)
    return type(default)(value) if value not in (None, "") else default


def stale_after() -> dt.timedelta:
    return dt.timedelta(seconds=_conf("WORKTEAM_RESYNC_STALE_SECONDS", 120.0))


# --- publishing and takeover ---------------------------------------------------------------


def publish(job_id: int) -> None:
    """Send the job to a worker after its row committed (tasks.outbox: bounded wait; a
    broker failure leaves the job pending for ``sweep``)."""
    from tasks.outbox import publish as publish_jobs

    publish_jobs([job_id])


def _publish_later(job_id: int, countdown: float) -> None:
    from tasks import settings

    try:
        run.apply_async(args=[job_id], countdown=countdown, queue=settings.queue(), retry=False)
    except Exception:
        log.warning("could not schedule re-sync job %s", job_id, exc_info=True)


@shared_task(name="tasks.resync.sweep", ignore_result=True)
def sweep() -> list[int]:
    """Republish re-sync jobs left pending (broker down when started) and take over running
    ones whose worker went silent: now if already stale, else when they would be. ``claim``
    makes duplicates harmless. Runs at every worker start (a crashed worker is restarted) and,
    if scheduled, from beat."""
    now = utcnow()
    with _session() as session:
        # One branch per partial index (pending, running): never the done jobs, which are
        # kept and grow with the users written (290 ms every minute at 2,000,000 jobs).
        live = [
            select(Job.id, Job.state, Job.created, Job.updated).where(Job.kind == r.KIND, state)
            for state in (JOB_PENDING, JOB_RUNNING)
        ]
        rows = session.execute(union_all(*live)).all()
    limit = stale_after()
    ids = []
    for row in rows:
        if row.state == "pending" and now - row.created > dt.timedelta(seconds=10):
            publish(row.id)
        elif row.state == "running":
            silent = now - row.updated
            if silent > limit:
                publish(row.id)
            else:
                _publish_later(row.id, (limit - silent).total_seconds() + 1)
        else:
            continue
        ids.append(row.id)
    return ids


@worker_ready.connect
def _take_over_after_restart(sender: Any = None, **_: Any) -> None:
    """A worker (re)started: look for re-syncs a dead worker left behind."""
    from tasks import settings

    try:
        sweep.apply_async(queue=settings.queue(), retry=False)
    except Exception:
        log.warning("could not queue the re-sync sweep", exc_info=True)


def _publish_followups(job_ids: list[int]) -> None:
    """Jobs the re-sync wrote (welcome mail, overflow notices, deactivation notices)."""
    if not job_ids:
        return
    try:
        from tasks.outbox import publish as publish_jobs

        publish_jobs(job_ids)
    except Exception:  # left pending: the outbox sweep republishes them
        log.warning("could not publish follow-ups of the re-sync", exc_info=True)


def _resend_failed_mail(session: Session, org_id: uuid.UUID, *, dry_run: bool) -> int:
    """Failed mail jobs of the organization go back to pending and are published again."""
    failed = list(
        session.scalars(
            select(Job.id).where(
                Job.org_id == org_id, JOB_FAILED, Job.kind.like("mail.%")
            )
        )
    )
    if dry_run or not failed:
        return len(failed)
    session.execute(
        update(Job)
        .where(any_of(Job.id, failed))
        .values(state="pending", attempts=0, error=None, updated=utcnow(), finished_at=None)
    )
    session.commit()
    _publish_followups(failed)
    return len(failed)


# --- the task ----------------------------------------------------------------------------


Manager = aliased(User)


def _consistent_manager() -> ColumnElement[bool]:
    """A reference that needs no re-resolution: none at all, or resolved to a user (of the
    same organization, which ``Manager`` is joined on) that it still names by one of the values
    models/managers.find_manager matches. Everything else goes through models/managers."""
    value = User.manager_value
    return or_(
        and_(value.is_(None), User.manager_state == "none"),
        and_(
            User.manager_state == "resolved",
            Manager.id.is_not(None),
            or_(
                func.lower(value) == cast(Manager.id, Text),
                func.lower(value) == func.lower(Manager.user_name),
                value == Manager.external_id,
                value == Manager.employee_number,
            ),
        ),
    )


class Run:
    """One run (possibly resumed) of a re-sync job; state lives in ``job.result``."""

    def __init__(self, session: Session, job: Job, task: Any) -> None:
        self.session = session
        self.job = job
        self.task = task
        self.org_id = job.org_id
        payload = job.payload or {}
        self.dry_run = bool(payload.get("dry_run"))
        self.export_id = payload.get("export_id")
        result = job.result or {}
        self.phase: str = result.get("phase", "users")
        self.after_seq: int = result.get("after_seq", 0)
        self.summary: dict[str, int] = result.get("summary", {})
        self.differences: dict[str, Any] = result.get("differences") or {}
        self.resumed_from = self.after_seq if job.attempts > 1 else None
        self.index: r.ExportIndex | None = None
        if self.export_id:
            export = self.session.get(r.ResyncExport, uuid.UUID(self.export_id))
            if export is None or export.org_id != self.org_id:
                raise ValueError("the export of this re-sync is gone")
            self.index = r.ExportIndex.build(r.Entry(*row) for row in export.entries)
        self.batch_size = _conf("WORKTEAM_RESYNC_BATCH_SIZE", 2000)
        self.batch_delay = _conf("WORKTEAM_RESYNC_BATCH_DELAY", 0.0)

    def count(self, key: str, n: int = 1) -> None:
        self.summary[key] = self.summary.get(key, 0) + n

    def add_differences(self, kind: str, rows: list[dict]) -> None:
        slot = self.differences.setdefault(kind, {"count": 0, "sample": []})
        slot["count"] += len(rows)
        room = r.SAMPLE_LIMIT - len(slot["sample"])
        if room > 0:
            slot["sample"].extend(rows[:room])

    def save(self, done: int | None = None, **extra: Any) -> bool:
        result = {
            "phase": self.phase,
            "after_seq": self.after_seq,
            "summary": self.summary,
            "differences": self.differences if self.index is not None else None,
        }
        if self.resumed_from is not None:
            result["resumed_from_seq"] = self.resumed_from
        values: dict[str, Any] = {"result": result, **extra}
        if done is not None:
            values["progress_done"] = done
        ok = r.checkpoint(self.session, self.job, **values)
        self.session.commit()
        self.report(done)
        return ok

    def report(self, done: int | None) -> None:
        if self.task is None or done is None:
            return
        meta = {"job_id": self.job.id, "done": done, "total": self.job.progress_total}
        try:
            self.task.update_state(state="PROGRESS", meta=meta)
            self.task.send_event("task-progress", **meta)
        except Exception:  # progress in Flower is best effort; the job row is the record
            log.debug("progress report failed", exc_info=True)

    # phases

    def users_pass(self) -> bool:
        done = self.job.progress_done
        while True:
            rows = self.session.execute(
                select(
                    User.seq,
                    User.id,
                    User.user_name,
                    User.external_id,
                    User.active,
                    _consistent_manager().label("consistent"),
                )
                .outerjoin(
                    Manager, (Manager.id == User.manager_id) & (Manager.org_id == User.org_id)
                )
                .where(User.org_id == self.org_id, User.seq > self.after_seq)
                .order_by(User.seq)
                .limit(self.batch_size)
            ).all()
            if not rows:
                return True
            self.managers_batch([row.id for row in rows if not row.consistent])
            if self.index is not None:
                self.export_batch(rows)
            self.after_seq = rows[-1].seq
            done += len(rows)
            self.count("users_checked", len(rows))
            ok = self.save(done)
            self.publish_followups()
            if not ok:
                return False
            if self.batch_delay:
                time.sleep(self.batch_delay)

    def managers_batch(self, ids: list[uuid.UUID]) -> None:
        if not ids:
            return
        # As the manager task resolves references: the organization's lock, then the rows'.
        m.lock_org(self.session, self.org_id)
        users = m.lock_users(self.session, ids)
        changed = sum(1 for user in users if m.resolve(self.session, user))
        self.session.flush()
        self.count("managers_rechecked", len(users))
        self.count("managers_changed", changed)
        for user in users:
            if user.manager_state in ("pending", "invalid"):
                self.count(f"managers_{user.manager_state}")
        if self.dry_run:
            self.session.rollback()

    def export_batch(self, rows: Sequence[Any]) -> None:
        assert self.index is not None
        diff = r.diff_batch(
            self.index, ((x.id, x.user_name, x.external_id, x.active) for x in rows), set()
        )
        self.add_differences("deactivate", diff.deactivate)
        self.add_differences("set_active", diff.set_active)
        self.add_differences("set_external_id", diff.set_external_id)
        if self.dry_run:
            return
        from models import store

        changes: dict[str, dict[str, Any]] = {}
        for row in diff.deactivate:
            changes.setdefault(row["id"], {})["active"] = False
        for row in diff.set_active:
            changes.setdefault(row["id"], {})["active"] = row["active"]
        for row in diff.set_external_id:
            changes.setdefault(row["id"], {})["externalId"] = row["to"]
        for user_id, change in changes.items():
            user = store.get_user(self.session, self.org_id, user_id)
            result = store.replace_user(self.session, user, {**user.attrs, **change})
            self.pending_jobs.extend(result.job_ids)
        self.count("export_changes_applied", len(changes))

    pending_jobs: list[int]

    def missing(self) -> None:
        if self.index is None:
            return
        existing = self.session.execute(
            select(func.lower(User.user_name), User.external_id).where(User.org_id == self.org_id)
        ).all()
        names = {name for name, _ in existing}
        ext_ids = {ext for _, ext in existing if ext}
        missing = [
            {"userName": e.user_name, "externalId": e.external_id, "active": e.active}
            for key, e in self.index.by_user_name.items()
            if key not in names and not (e.external_id and e.external_id in ext_ids)
        ]
        self.differences.pop("missing", None)
        self.add_differences("missing", missing)

    def execute(self) -> str:
        self.pending_jobs = []
        if self.phase == "users":
            finished = self.users_pass()
            if not finished:
                return "cancelled"
            self.phase = "licenses"
            self.save()
        done = self.job.progress_total - 3
        if self.phase == "licenses":
            written = reconcile_org(self.session, self.org_id)
            # The tally, not a count of every user by state.
            self.summary["licensed"] = licensing.licensed_count(self.session, self.org_id)
            self.summary["unlicensed"] = licensing.waiting_count(self.session, self.org_id)
            if self.dry_run:
                self.session.rollback()
                written = []
            self.phase = "mail"
            ok = self.save(done + 1)
            _publish_followups(written)
            if not ok:
                return "cancelled"
        if self.phase == "mail":
            self.summary["mail_resent"] = _resend_failed_mail(
                self.session, self.org_id, dry_run=self.dry_run
            )
            self.phase = "missing"
            if not self.save(done + 2):
                return "cancelled"
        if self.phase == "missing":
            self.missing()
            self.phase = "done"
            self.save(self.job.progress_total, state="done", finished_at=utcnow(), error=None)
        return "done"

    def publish_followups(self) -> None:
        """Changes applied from the export wrote follow-up jobs (mail, seats, managers)."""
        _publish_followups(self.pending_jobs)
        self.pending_jobs = []


@shared_task(
    name=TASK_NAME,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=False,
)
def run(self: Any, job_id: int) -> dict:
    """Run (or resume) re-sync job ``job_id``; returns its ids-and-counts summary."""
    return run_job(job_id, task=self)


def run_job(job_id: int, task: Any = None) -> dict:
    with _session() as session:
        job = r.claim(session, job_id, stale_after=stale_after())
        if job is None:
            session.rollback()
            log.info("re-sync job %s is not claimable (finished or held by a live run)", job_id)
            return {"job_id": job_id, "state": "skipped"}
        if not job.progress_total:
            job.progress_total = user_tally(session, job.org_id).users + 3
        session.commit()
        log.info("re-sync job %s started (attempt %s, org %s)", job_id, job.attempts, job.org_id)
        try:
            outcome = Run(session, job, task).execute()
        except Exception as exc:
            session.rollback()
            # A permanent failure is recorded for the admin; the worker does not retry it.
            r.checkpoint(
                session,
                job,
                state="failed",
                error=type(exc).__name__ + ": " + str(exc)[:300],
                finished_at=utcnow(),
            )
            session.commit()
            log.exception("re-sync job %s failed", job_id)
            raise
        session.refresh(job)
        log.info("re-sync job %s %s", job_id, outcome)
        return {
            "job_id": job_id,
            "state": job.state,
            "done": job.progress_done,
            "total": job.progress_total,
        }
