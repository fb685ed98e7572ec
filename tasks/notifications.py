"""Notification mail: ``tasks.notifications.send(job_id)`` sends one message for one (event,
recipient); ``tasks.notifications.deactivated_org(job_id)`` picks who hears about each waiting
deactivation of an organization (``deactivated(job_id)``: one, when the sweep finds it).

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
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import Task, shared_task
from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models import licensing
from models.db import any_of, driver_rows, utcnow
from models.jobs import (
    KIND_MAIL,
    KIND_NOTIFY_DEACTIVATED,
    KIND_NOTIFY_DEACTIVATED_ORG,
    enqueue,
    enqueue_coalesced,
)
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
# Deactivation notices of one organization decided in one transaction.
NOTICE_BATCH = 500


NO_ADMIN = "the organization has no admin"


def record_dropped(
    session: Session, org_id: uuid.UUID, event_keys: Sequence[str], template: str, reason: str
) -> None:
    """A dropped record for each of ``event_keys`` (one statement), unless one exists."""
    now = utcnow()
    session.execute(
        insert(SentMail)
        .values([
            {"org_id": org_id, "event_key": key, "template": template, "recipient": "",
             "state": "dropped", "reason": reason, "created": now}
            for key in event_keys
        ])
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
    session: Session, org_id: uuid.UUID, template: str, event: str, payload: dict,
    admins: list[User] | None = None,
) -> list[int]:
    """One mail job per active org admin for ``event``; none: a dropped record and a warning.
    ``admins``: the organization's, when the caller read them already."""
    if admins is None:
        admins = licensing.admins(session, org_id)
    if not admins:
        log.warning("org %s has no admin with an email: %s notice dropped", org_id, template)
        record_dropped(session, org_id, [event], template, NO_ADMIN)
        return []
    ids = [
        mail_job(session, org_id, template, f"{event}:{a.id}", a.id, **payload) for a in admins
    ]
    return [i for i in ids if i is not None]


# -------------------------------------------------------------------------- deactivation


def handle_deactivated(
    session: Session, job: Job, admins: list[User] | None = None,
    unreachable: list[str] | None = None,
) -> list[int]:
    """The mail jobs of one deactivation notice: to the user's manager, else to the org's
    admins. ``unreachable`` (a pass over many notices, ``admins`` read and empty): the notice's
    event is added to it for the caller to record as dropped with the pass's others."""
    user_id = uuid.UUID(job.payload["user_id"])
    event = f"deactivated:{user_id}:{job.payload.get('version')}"
    user = session.get(User, user_id)
    if user is None:
        record_dropped(session, job.org_id, [event], "deactivated", "the user was deleted")
        return []
    manager = session.get(User, user.manager_id) if user.manager_id else None
    if manager is not None and manager.active and manager.primary_email:
        found = mail_job(
            session, job.org_id, "deactivated", f"{event}:{manager.id}", manager.id,
            user_id=str(user_id),
        )
        return [found] if found else []
    if unreachable is not None and admins == []:
        unreachable.append(event)
        return []
    return to_admins(session, job.org_id, "deactivated", event, {"user_id": str(user_id)},
                     admins)


@shared_task(name="tasks.notifications.deactivated", bind=True, ignore_result=True)
def deactivated(self: Task, job_id: int) -> str:
    """One notice on its own: a notice the outbox sweep found waiting (the organization's
    coalesced job below usually decides it first)."""
    return run_job(self, job_id, handle_deactivated)


def handle_deactivated_org(session: Session, job: Job) -> list[int]:
    """Every waiting deactivation notice of the organization, up to NOTICE_BATCH in this
    transaction (a new coalesced pass takes the rest). A notice being run by a task of its own
    is locked, so skipped here."""
    waiting = list(
        session.scalars(
            select(Job)
            .where(Job.org_id == job.org_id, Job.kind == KIND_NOTIFY_DEACTIVATED, JOB_PENDING)
            .order_by(Job.id)
            .limit(NOTICE_BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    # The users and their managers in two queries (``session.get`` below then finds them in
    # the identity map), the admins in one: not three queries per notice.
    users = session.scalars(
        select(User).where(any_of(User.id, [uuid.UUID(n.payload["user_id"]) for n in waiting]))
    ).all()
    managers = [u.manager_id for u in users if u.manager_id]
    if managers:
        session.scalars(select(User).where(any_of(User.id, managers))).all()
    admins = licensing.admins(session, job.org_id)
    mails: list[int] = []
    unreachable: list[str] = []  # notices with no manager to mail, in an org with no admin
    now = utcnow()
    for notice in waiting:
        mails += handle_deactivated(session, notice, admins, unreachable)
        notice.state, notice.updated, notice.finished_at = "done", now, now
        notice.attempts += 1
        notice.result = {"covered_by": job.id}
    if unreachable:
        # One warning and one statement for the pass (a burst of deactivations was a warning
        # line and an INSERT each).
        log.warning("org %s has no admin with an email: %d deactivated notice(s) dropped",
                    job.org_id, len(unreachable))
        record_dropped(session, job.org_id, unreachable, "deactivated", NO_ADMIN)
    job.result = {"notices": len(waiting)}
    if len(waiting) == NOTICE_BATCH:
        mails += enqueue_coalesced(session, job.org_id, KIND_NOTIFY_DEACTIVATED_ORG)
    return mails


@shared_task(name="tasks.notifications.deactivated_org", bind=True, ignore_result=True)
def deactivated_org(self: Task, job_id: int) -> str:
    return run_job(self, job_id, handle_deactivated_org, coalesced=True)


# ---------------------------------------------------------------------------------- send


@dataclass(frozen=True)
class Person:
    """What a mail needs of a user (the recipient, or the user the mail is about)."""

    active: bool
    email: str | None
    display_name: str | None
    given_name: str | None
    user_name: str


# The event's record, created or found and locked until commit (a no-op update on conflict
# takes the row lock as SELECT ... FOR UPDATE would), with the recipient and the subject: one
# round trip. A welcome mail used to take five statements through the ORM, which cost the
# worker more CPU than rendering and sending the mail.
_RECORD = text(
    """
    WITH rec AS (
        INSERT INTO sent_mail (org_id, event_key, template, recipient, state, created)
        VALUES (:org_id, :event, :template, '', 'pending', now())
        ON CONFLICT (event_key) DO UPDATE SET event_key = excluded.event_key
        RETURNING state
    )
    SELECT rec.state,
           r.active AS r_active, r.primary_email AS r_email, r.display_name AS r_display_name,
           r.given_name AS r_given_name, r.user_name AS r_user_name,
           s.active AS s_active, s.primary_email AS s_email, s.display_name AS s_display_name,
           s.given_name AS s_given_name, s.user_name AS s_user_name
    FROM rec
    LEFT JOIN users r ON r.id = CAST(:recipient AS uuid)
    LEFT JOIN users s ON s.id = CAST(:subject AS uuid)
    """
)
# The record's outcome (unless ``mark`` is false: sent or dropped before); with a ``job_id``,
# that (batched) job is marked done in the same statement. A welcome (``welcomed``: its user's
# id) whose user was deleted meanwhile loses its record instead: the deletion could not see
# it, uncommitted (models/outbox.py ``forget_welcome``). FOR KEY SHARE waits for a deletion
# not yet committed, and then finds the user gone, or there if it rolled back.
_FINISH = text(
    """
    WITH gone AS (
        SELECT CAST(:welcomed AS uuid) IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM users WHERE id = CAST(:welcomed AS uuid) FOR KEY SHARE) AS yes
    ),
    rec AS (
        UPDATE sent_mail SET state = :state, reason = :reason, recipient = :recipient,
                             sent_at = CASE WHEN CAST(:sent AS boolean) THEN now() END
        WHERE event_key = :event AND CAST(:mark AS boolean) AND NOT (SELECT yes FROM gone)
    ),
    forgotten AS (
        DELETE FROM sent_mail WHERE event_key = :event AND (SELECT yes FROM gone)
    )
    UPDATE jobs SET state = 'done', attempts = attempts + 1, updated = now(),
                    finished_at = now(), result = CAST(:result AS jsonb)
    WHERE id = :job_id
    RETURNING id
    """
)


def _person(values: Sequence[Any]) -> Person | None:
    active, email, display_name, given_name, user_name = values
    return None if user_name is None else Person(active, email, display_name, given_name,
                                                 user_name)


def _drop_reason(template: str, recipient: Person | None, subject: Person | None) -> str | None:
    if recipient is None:
        return "the recipient was deleted"
    if not recipient.active:
        return "the recipient was deactivated"
    if not recipient.email:
        return "the recipient has no email address"
    if template == "deactivated":
        if subject is None:
            return "the user was deleted"
        if subject.active:
            return "the user was reactivated"
    return None


def _context(session: Session, template: str, org: Organization, recipient: Person,
             subject: Person | None) -> dict:
    context = {
        "org_name": org.name,
        "name": recipient.display_name or recipient.given_name or recipient.user_name,
        "public_url": current_app.config["PUBLIC_URL"],
    }
    if template == "overflow":
        context["seats"] = org.seats
        context["waiting"] = licensing.waiting_count(session, org.id)
    if subject is not None:
        context["user_name"] = subject.display_name or subject.user_name
    return context


def send_one(
    session: Session,
    org_id: uuid.UUID,
    job_id: int,
    payload: dict,
    mailer: mail.Mailer,
    org: Organization | None = None,
    *,
    batched_with: int | None = None,
) -> str:
    """Send one job's mail unless its event was sent or dropped before (no commit); returns
    "sent", "dropped" or "done before". ``org``: the job's organization when the caller has it
    already; ``batched_with``: the task that sends this job in its batch, which marks the job
    done here too (a job run by ``run_job`` is marked done by it)."""
    template, event = payload["template"], payload["event"]
    subject_id = payload.get("user_id")
    (row,) = driver_rows(
        session.connection(), _RECORD,
        {"org_id": org_id, "event": event, "template": template,
         "recipient": payload["recipient_id"], "subject": subject_id},
    )
    if row[0] != "pending":
        outcome, state, reason, address = "done before", row[0], None, None
    else:
        recipient, subject = _person(row[1:6]), _person(row[6:11])
        reason = _drop_reason(template, recipient, subject)
        if reason is not None:
            outcome = state = "dropped"
            address = ""
            log.info("mail %s for job %s dropped: %s", template, job_id, reason)
        else:
            assert recipient is not None and recipient.email
            if org is None:
                org = session.get(Organization, org_id)
            assert org is not None
            msg = mail.render(
                template,
                current_app.config["MAIL_FROM"],
                recipient.email,
                event,
                **_context(session, template, org, recipient, subject),
            )
            mailer.send(msg, recipient.email)
            outcome = state = "sent"
            address = recipient.email
            log.info("mail %s for job %s sent", template, job_id)
    if outcome != "done before" or batched_with is not None:
        driver_rows(
            session.connection(), _FINISH,
            {"mark": outcome != "done before", "sent": outcome == "sent", "state": state,
             "reason": reason, "recipient": address, "event": event,
             "welcomed": subject_id if template == "welcome" else None,
             "job_id": job_id if batched_with is not None else None,
             "result": json.dumps({"batched_with": batched_with})},
        )
    return outcome


def handle_send(session: Session, job: Job, mailer: mail.Mailer) -> list[int]:
    """``run_job``'s handler: ``send_one`` for ``job``."""
    send_one(session, job.org_id, job.id, job.payload, mailer)
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


# The next mail of the organization waiting for its first attempt, after ``last``.
_PICK = text(
    """
    SELECT id, payload FROM jobs
    WHERE org_id = :org_id AND kind = :kind AND state = 'pending' AND attempts = 0
      AND id > :last
    ORDER BY id LIMIT 1
    FOR UPDATE SKIP LOCKED
    """
)


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
    while org is not None and sent + len(skipped) < limit:
        with db.session() as session:
            rows = driver_rows(session.connection(), _PICK,
                               {"org_id": org.id, "kind": KIND_MAIL, "last": last})
            if not rows:
                break
            picked = rows[0]
            last = picked.id
            try:
                send_one(session, org.id, picked.id, picked.payload, mailer, org,
                         batched_with=job_id)
                session.commit()
                sent += 1
                continue
            except Exception as exc:
                session.rollback()
                failed, transient, error = picked.id, is_transient(exc), type(exc).__name__
        log.info("batched mail job %s not sent (%s); handed to its own task", failed, error)
        skipped.append(failed)
        publish([failed], {failed: KIND_MAIL})
        if transient:
            break
    return sent
