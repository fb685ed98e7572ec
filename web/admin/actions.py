"""What an org admin can see and do, shared by the pages, the JSON endpoints and the CLI.

Each function takes the session and the admin's organization: every query is scoped to that
organization, so nothing here can reach another one. Functions that change state commit.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import licensing, managers, store
from models import resync as r
from models.audit import AuditEvent
from models.db import any_of
from models.organization import Organization
from models.outbox import JOB_FAILED, Job
from models.tokens import current_token, issue_token
from models.user import User
from web.admin import config as cfg


class ActionError(Exception):
    """A refused admin action; the message is shown to the admin as is."""


def base_url(org: Organization) -> str:
    return f"{current_app.config['PUBLIC_URL']}/scim/v2/{org.id}"


def scim_unavailable_reason(org: Organization) -> str | None:
    if org.plan != "paid":
        return (
            "SCIM User Provisioning needs a paid plan: this organization is on the "
            f"{org.plan} plan. Upgrade the plan to connect Okta or Microsoft Entra ID."
        )
    return None


# --- worker heartbeat ----------------------------------------------------------------------


def worker_queue() -> str:
    try:
        from tasks import settings

        return settings.queue()
    except ImportError:
        return current_app.extensions["celery"].conf.task_default_queue


def worker_heartbeat_age() -> float | None:
    """Seconds since a worker consuming our queue last beat; None if none ever did (or Redis
    cannot say). See tasks/heartbeat.py for the mechanism."""
    from tasks.heartbeat import last_seen
    from web.admin.security import redis_client

    try:
        seen = last_seen(redis_client(), worker_queue())
    except Exception:
        return None
    return None if seen is None else max(0.0, time.time() - seen)


# --- SCIM settings -------------------------------------------------------------------------


def scim_status(session: Session, org: Organization) -> dict[str, Any]:
    token = current_token(session, org.id)
    age = worker_heartbeat_age()
    return {
        "id": str(org.id),
        "name": org.name,
        "plan": org.plan,
        "seats": org.seats,
        "scim_enabled": org.scim_enabled,
        "unavailable_reason": scim_unavailable_reason(org),
        "base_url": base_url(org),
        "token": None
        if token is None
        else {
            "prefix": token.prefix,
            "created": token.created.isoformat(),
            "last_used": token.last_used.isoformat() if token.last_used else None,
        },
        "worker_heartbeat_age_seconds": None if age is None else round(age, 1),
        "worker_alive": age is not None and age <= cfg.get_int("WORKTEAM_WORKER_HEARTBEAT_MAX_AGE"),
    }


def generate_token(session: Session, org: Organization) -> str:
    """A new bearer token; the current one stops working at once. Returns it: shown once."""
    if scim_unavailable_reason(org):
        raise ActionError(scim_unavailable_reason(org))
    raw, _ = issue_token(session, org)
    session.commit()
    return raw


def set_enabled(session: Session, org: Organization, enabled: bool) -> None:
    if enabled and scim_unavailable_reason(org):
        raise ActionError(scim_unavailable_reason(org))
    org.scim_enabled = enabled
    session.commit()


# --- activity ------------------------------------------------------------------------------


@dataclass
class ActivityPage:
    rows: list[dict]
    total: int  # at most COUNT_CAP
    page: int
    pages: int  # of the counted rows
    more: bool = False  # more than COUNT_CAP match: total is a lower bound, pages unknown


# The Activity tab counts matching requests this far and no further: an organization whose IdP
# syncs daily keeps millions of audit rows for the retention period, and counting them all on
# every view took 120 ms at 2,000,000 rows (seconds at tens of millions).
COUNT_CAP = 10_000


def activity(
    session: Session,
    org: Organization,
    *,
    method: str | None = None,
    status: str | None = None,
    path: str | None = None,
    page: int = 1,
    page_size: int | None = None,
) -> ActivityPage:
    """Audit rows of the organization, newest first. ``status`` is a code ("409") or a class
    ("4xx"); ``path`` a substring."""
    page_size = page_size or cfg.get_int("WORKTEAM_ADMIN_PAGE_SIZE")
    conditions: list[Any] = [AuditEvent.org_id == org.id]
    if method:
        conditions.append(AuditEvent.method == method.upper())
    if status:
        status = status.strip().lower()
        if len(status) == 3 and status.endswith("xx") and status[0].isdigit():
            low = int(status[0]) * 100
            conditions += [AuditEvent.status >= low, AuditEvent.status < low + 100]
        elif status.isdigit():
            conditions.append(AuditEvent.status == int(status))
        else:
            raise ActionError("status must be a code like 404 or a class like 4xx")
    if path:
        escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(AuditEvent.path.ilike(f"%{escaped}%", escape="\\"))
    counted = select(AuditEvent.id).where(*conditions).limit(COUNT_CAP + 1).subquery()
    total = session.scalar(select(func.count()).select_from(counted)) or 0
    more = total > COUNT_CAP
    total = min(total, COUNT_CAP)
    pages = max(1, -(-total // page_size))
    page = max(1, page) if more else min(max(1, page), pages)  # past the count: keep paging
    events = session.scalars(
        select(AuditEvent)
        .where(*conditions)
        .order_by(AuditEvent.created.desc(), AuditEvent.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    names = _user_names(session, org.id, [e.resource_id for e in events])
    rows = [
        {
            "time": event.created.isoformat(),
            "method": event.method,
            "path": event.path,
            "status": event.status,
            "user_id": event.resource_id,
            "user": names.get(event.resource_id or ""),
            "token_prefix": event.token_prefix,
            "duration_ms": event.duration_ms,
        }
        for event in events
    ]
    return ActivityPage(rows, total, page, pages, more)


def _user_names(session: Session, org_id: uuid.UUID, ids: list[str | None]) -> dict[str, str]:
    """userName by id (as text) of the users among ``ids`` (audit rows' resource ids, which
    may be anything a client put in a path). Looked up by primary key after the page is read:
    joined on the users' id cast to text, the page's query walked every user of the
    organization for each row (70 s for a page at a million users)."""
    wanted = set()
    for value in ids:
        try:
            wanted.add(uuid.UUID(value or ""))
        except ValueError:
            continue
    if not wanted:
        return {}
    found = session.execute(
        select(User.id, User.user_name).where(User.org_id == org_id, any_of(User.id, wanted))
    )
    return {str(user_id): name for user_id, name in found}


# --- users ---------------------------------------------------------------------------------


def users_overview(session: Session, org: Organization, *, limit: int = 200) -> dict[str, Any]:
    """Manager references that are pending or invalid, seats used, unlicensed users, failed
    follow-up jobs."""
    # Every count here reads the few users it counts (partial indexes, the tally), never the
    # whole organization: each such read took 340-500 ms at 500,000 users with realistic
    # attributes (bench/README.md, "The admin tabs at scale").
    problems = session.execute(
        select(User.id, User.user_name, User.manager_value, User.manager_state, User.manager_reason)
        .where(User.org_id == org.id, managers.HAS_PROBLEM)
        .order_by(User.manager_state.desc(), User.seq)
        .limit(limit)
    ).all()
    problem_count = session.scalar(
        select(func.count()).select_from(User).where(User.org_id == org.id, managers.HAS_PROBLEM)
    )
    used = licensing.licensed_count(session, org.id)
    waiting = licensing.waiting_count(session, org.id)
    inactive = session.scalar(
        select(func.count()).select_from(User).where(User.org_id == org.id, User.active.is_(False))
    )
    active = store.user_tally(session, org.id).users - (inactive or 0)
    unlicensed = session.execute(
        select(User.id, User.user_name, User.created)
        .where(User.org_id == org.id, User.license_state == "unlicensed")
        .order_by(User.seq)
        .limit(limit)
    ).all()
    return {
        "managers": {
            "count": problem_count or 0,
            "rows": [
                {
                    "id": str(row.id),
                    "userName": row.user_name,
                    "manager": row.manager_value,
                    "state": row.manager_state,
                    "reason": row.manager_reason
                    or (
                        "the manager does not exist yet"
                        if row.manager_state == "pending"
                        else "the reference cannot be resolved"
                    ),
                }
                for row in problems
            ],
        },
        "licenses": {
            "plan": org.plan,
            "seats": org.seats,
            "used": used,
            "unlicensed": waiting,
            "active_users": active,
            "unlicensed_rows": [
                {"id": str(row.id), "userName": row.user_name, "since": row.created.isoformat()}
                for row in unlicensed
            ],
        },
        "failed_jobs": failed_jobs(session, org, limit=limit),
    }


def failed_jobs(session: Session, org: Organization, *, limit: int = 200) -> list[dict]:
    jobs = session.scalars(
        select(Job)
        .where(Job.org_id == org.id, JOB_FAILED)
        .order_by(Job.updated.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": job.id,
            "kind": job.kind,
            "subject_id": job.subject_id,
            "attempts": job.attempts,
            "error": job.error,
            "updated": job.updated.isoformat() if job.updated else None,
        }
        for job in jobs
    ]


def retry_job(session: Session, org: Organization, job_id: int) -> Job:
    """Put a failed job of the organization back to pending and publish it."""
    job = session.scalar(select(Job).where(Job.id == job_id, Job.org_id == org.id))
    if job is None:
        raise ActionError(f"no job {job_id} in this organization")
    if job.state != "failed":
        raise ActionError(f"job {job_id} is {job.state}, not failed")
    if job.kind == r.KIND:
        raise ActionError("start a new re-sync instead of retrying a failed one")
    job.state, job.attempts, job.error = "pending", 0, None
    session.commit()
    _publish([job.id])
    return job


def _publish(job_ids: list[int]) -> None:
    try:
        from tasks.outbox import publish

        publish(job_ids)
    except Exception:  # left pending: the outbox sweep republishes them
        current_app.logger.warning("publish failed; jobs stay pending for the sweep")


# --- re-sync -------------------------------------------------------------------------------


def start_resync(
    session: Session,
    org: Organization,
    *,
    dry_run: bool,
    export: bytes | None = None,
    filename: str | None = None,
    export_id: uuid.UUID | None = None,
    requested_by: str | None = None,
) -> Job:
    """Start the organization's re-sync (refused while one is live); an export is parsed
    here, so a bad file is refused before any job exists."""
    if export is not None:
        try:
            entries = r.parse_export(export)
        except (r.ExportError, UnicodeDecodeError) as exc:
            raise ActionError(f"the export cannot be read: {exc}") from None
        export_id = r.store_export(session, org.id, entries, filename).id
    elif export_id is not None:
        stored = session.get(r.ResyncExport, export_id)
        if stored is None or stored.org_id != org.id:
            # Exports go with the outbox retention (tasks/outbox.py ``prune``).
            raise ActionError("that export is not kept any more: upload it again")
    try:
        job = r.create_job(
            session, org.id, dry_run=dry_run, export_id=export_id, requested_by=requested_by
        )
    except r.ResyncBusy as exc:
        session.rollback()
        raise ActionError(f"a re-sync is already in progress (job {exc.job_id})") from None
    session.commit()
    from tasks.resync import publish

    publish(job.id)
    return job


def resync_job(session: Session, org: Organization, job_id: int | None = None) -> Job | None:
    if job_id is None:
        return r.latest_job(session, org.id)
    return r.get_job(session, org.id, job_id)


def cancel_resync(session: Session, org: Organization, job_id: int | None = None) -> Job:
    job = r.live_job(session, org.id) if job_id is None else r.get_job(session, org.id, job_id)
    if job is None:
        raise ActionError("no re-sync to cancel")
    if not r.cancel(session, job):
        raise ActionError(f"re-sync {job.id} is already {job.state}")
    session.commit()
    session.refresh(job)
    return job
