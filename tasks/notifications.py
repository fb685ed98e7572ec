"""Notification mail: ``tasks.notifications.send(job_id)`` sends one message for one (event,
recipient); ``tasks.notifications.deactivated(job_id)`` picks who hears about a deactivation.

Exactly once per event: a ``sent_mail`` row keyed by the event is locked for the send and marked
sent in the same transaction as the job. A send task also sends, in transactions of their own,
up to BATCH-1 other waiting mails of its organization over the same SMTP session; so a burst of
welcome mails needs only one published task per BATCH (tasks/licenses.py). The one gap left
is a worker dying after the SMTP server accepted the message but before that commit; the retry
then sends again, with the same Message-ID (derived from the event key), which receivers use to
drop duplicates.
"""

from __future__ import annotations

import functools
import logging
import uuid

from celery import Task, shared_task
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models import licensing
from models.db import utcnow
from models.jobs import KIND_MAIL, enqueue
from models.organization import Organization
from models.outbox import JOB_PENDING, Job, SentMail
from models.user import User
from tasks import db, mail, settings
from tasks.outbox import is_transient, publish, run_job

log = logging.getLogger("workteam.mail")

# Mails of one organization sent by one task over one SMTP session. Welcome mails come in
# bursts (an initial sync licenses thousands of users): a task, a connection and a QUIT per
# mail cost the worker more than the mail itself.
BATCH = 50


def record_dropped(
    session: Session, org_id: uuid.UUID, event_key: str, template: str, reason: str
) -> None:
    session.execute(
        insert(SentMail)
        .values(
            org_id=org_id, event_key=event_key, template=template, recipient="",
            state="dropped", reason=reason, created=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["event_key"])
    )


def mail_job(
    session: Session, org_id: uuid.UUID, template: str, event: str, recipient_id: uuid.UUID,
    **payload: str,
) -> int | None:
    return enqueue(
        session,
        org_id,
        KIND_MAIL,
        f"{KIND_MAIL}:{event}",
        subject_id=str(recipient_id),
        payload={"template": template, "event": event, "recipient_id": str(recipient_id),
                 **payload},
    )


def to_admins(
    session: Session, org_id: uuid.UUID, template: str, event: str, payload: dict
) -> list[int]:
    """One mail job per active org admin for ``event``; none: a dropped record and a warning."""
    admins = licensing.admins(session, org_id)
    if not admins:
        log.warning("org %s has no admin with an email: %s notice dropped", org_id, template)
        record_dropped(session, org_id, event, template, "the organization has no admin")
        return []
    ids = [
        mail_job(session, org_id, template, f"{event}:{a.id}", a.id, **payload) for a in admins
    ]
    return [i for i in ids if i is not None]


# -------------------------------------------------------------------------- deactivation


def handle_deactivated(session: Session, job: Job) -> list[int]:
    user_id = uuid.UUID(job.payload["user_id"])
    event = f"deactivated:{user_id}:{job.payload.get('version')}"
    user = session.get(User, user_id)
    if user is None:
        record_dropped(session, job.org_id, event, "deactivated", "the user was deleted")
        return []
    manager = session.get(User, user.manager_id) if user.manager_id else None
    if manager is not None and manager.active and manager.primary_email:
        found = mail_job(
            session, job.org_id, "deactivated", f"{event}:{manager.id}", manager.id,
            user_id=str(user_id),
        )
        return [found] if found else []
    return to_admins(session, job.org_id, "deactivated", event, {"user_id": str(user_id)})


@shared_task(name="tasks.notifications.deactivated", bind=True, ignore_result=True)
def deactivated(self: Task, job_id: int) -> str:
    return run_job(self, job_id, handle_deactivated)


# ---------------------------------------------------------------------------------- send


def _drop_reason(session: Session, template: str, recipient: User | None,
                 subject: User | None, payload: dict) -> str | None:
    if recipient is None:
        return "the recipient was deleted"
    if not recipient.active:
        return "the recipient was deactivated"
    if not recipient.primary_email:
        return "the recipient has no email address"
    if template == "deactivated":
        if subject is None:
            return "the user was deleted"
        if subject.active:
            return "the user was reactivated"
    return None


def _context(session: Session, template: str, org: Organization, recipient: User,
             subject: User | None) -> dict:
    context = {
        "org_name": org.name,
        "name": recipient.display_name or recipient.given_name or recipient.user_name,
        "public_url": current_app.config["PUBLIC_URL"],
    }
    if template == "overflow":
        context["seats"] = org.seats
        context["waiting"] = session.scalar(
            select(func.count()).where(User.org_id == org.id, User.license_state == "unlicensed")
        )
    if subject is not None:
        context["user_name"] = subject.display_name or subject.user_name
    return context


def handle_send(
    session: Session, job: Job, mailer: mail.Mailer, org: Organization | None = None
) -> list[int]:
    """Send ``job``'s mail unless its event was sent or dropped before. ``org``: the job's
    organization when the caller has it already (a batch of one organization's mails)."""
    p = job.payload
    template, event = p["template"], p["event"]
    # The event's record, created or found, and locked until commit, in one statement (a
    # no-op update on conflict takes the row lock as SELECT ... FOR UPDATE would).
    new = insert(SentMail).values(org_id=job.org_id, event_key=event, template=template,
                                  recipient="", state="pending", created=utcnow())
    record = session.scalar(
        new.on_conflict_do_update(index_elements=["event_key"],
                                  set_={"event_key": new.excluded.event_key})
        .returning(SentMail),
        execution_options={"populate_existing": True},
    )
    assert record is not None
    if record.state != "pending":
        return []  # sent or dropped before: exactly once
    recipient = session.get(User, uuid.UUID(p["recipient_id"]))
    subject = session.get(User, uuid.UUID(p["user_id"])) if p.get("user_id") else None
    reason = _drop_reason(session, template, recipient, subject, p)
    if reason is not None:
        record.state, record.reason = "dropped", reason
        log.info("mail %s for job %s dropped: %s", template, job.id, reason)
        return []
    assert recipient is not None and recipient.primary_email
    if org is None:
        org = session.get(Organization, job.org_id)
    assert org is not None
    msg = mail.render(
        template,
        current_app.config["MAIL_FROM"],
        recipient.primary_email,
        event,
        **_context(session, template, org, recipient, subject),
    )
    mailer.send(msg)
    record.state, record.recipient, record.sent_at = "sent", recipient.primary_email, utcnow()
    log.info("mail %s for job %s sent", template, job.id)
    return []


@shared_task(name="tasks.notifications.send", bind=True, ignore_result=True)
def send(self: Task, job_id: int) -> str:
    """This job's mail, then up to BATCH-1 other mails of its organization waiting for their
    first attempt, over the same SMTP session (see ``send_waiting``)."""
    timeout = settings.get_float("WORKTEAM_SMTP_TIMEOUT")
    with mail.Mailer(current_app.config["SMTP_URL"], timeout) as mailer:
        result = run_job(self, job_id, functools.partial(handle_send, mailer=mailer))
        send_waiting(job_id, mailer)
    return result


def send_waiting(job_id: int, mailer: mail.Mailer, limit: int = BATCH - 1) -> int:
    """Send other mails of ``job_id``'s organization that wait for their first attempt, each in
    a transaction of its own (so exactly once, as for a single job); return how many. A mail
    that fails is handed to a task of its own (retries, failure state) and, when the failure
    is transient (SMTP down), the batch stops."""
    sent = 0
    skipped: list[int] = []
    # Each pick starts after the previous one (the first after this task's own job): ORDER BY
    # id LIMIT 1 over every waiting mail read past all the mails sent before it (tens of ms
    # per pick with 75,000 welcome mails waiting). Mails before this job have tasks of their
    # own (one is published per BATCH), and the outbox sweep republishes any left waiting.
    last = job_id
    with db.session() as session:
        org = session.scalar(
            select(Organization).join(Job, Job.org_id == Organization.id).where(Job.id == job_id)
        )
    org_id = org.id if org is not None else None
    while org_id is not None and sent + len(skipped) < limit:
        with db.session() as session:
            job = session.scalar(
                select(Job)
                .where(Job.org_id == org_id, Job.kind == KIND_MAIL, JOB_PENDING,
                       Job.attempts == 0, Job.id > last)
                .order_by(Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if job is None:
                break
            last = job.id
            try:
                handle_send(session, job, mailer, org)
                now = utcnow()
                job.state, job.attempts, job.updated, job.finished_at = "done", 1, now, now
                job.result = {"batched_with": job_id}
                session.commit()
                sent += 1
                continue
            except Exception as exc:
                session.rollback()
                failed, transient, error = job.id, is_transient(exc), type(exc).__name__
        log.info("batched mail job %s not sent (%s); handed to its own task", failed, error)
        skipped.append(failed)
        publish([failed], {failed: KIND_MAIL})
        if transient:
            break
    return sent
