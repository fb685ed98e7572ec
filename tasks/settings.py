"""Worker-side settings. Each is read from the Flask app's config when the app defines it (tests
pass it there), else from the environment, else the default below. ``WORKTEAM_*`` names are
documented in .env.example."""

from __future__ import annotations

import os

from flask import current_app, has_app_context

DEFAULTS: dict[str, str] = {
    # Celery queue for every task of this deployment (tests use one queue per run).
    "WORKTEAM_CELERY_QUEUE": "default",
    # A failing job is tried this many times in all before it is `failed`.
    "WORKTEAM_TASK_MAX_ATTEMPTS": "8",
    # Backoff for transient failures: base * 2**(attempt-1), capped, with full jitter.
    "WORKTEAM_RETRY_BASE_SECONDS": "10",
    "WORKTEAM_RETRY_MAX_SECONDS": "900",
    # The outbox sweep runs this often and republishes jobs pending for longer than
    # REPUBLISH_AFTER (broker down at commit, message lost with its worker).
    "WORKTEAM_SWEEP_SECONDS": "30",
    "WORKTEAM_REPUBLISH_AFTER_SECONDS": "120",
    # Periodic catch-all passes over pending manager references and seat assignments.
    "WORKTEAM_MANAGER_SWEEP_SECONDS": "300",
    "WORKTEAM_LICENSE_SWEEP_SECONDS": "600",
    # After a failed publish, web processes skip the broker for this long (jobs stay pending).
    "WORKTEAM_PUBLISH_BACKOFF_SECONDS": "5",
    # An organization-wide pass (manager references, license check, deactivation notices)
    # starts this long after the write that asked for it, so a burst of writes shares it.
    "WORKTEAM_COALESCE_SECONDS": "1",
    "WORKTEAM_SMTP_TIMEOUT": "10",
    # Beat deletes expired audit rows this often (their age: web/config.py, tasks/audit.py).
    "WORKTEAM_AUDIT_PRUNE_SECONDS": "3600",
    # Beat deletes finished jobs, sent-mail records and re-sync exports older than this many
    # days (0: never), this often (tasks/outbox.py ``prune``; what it keeps: models/outbox.py).
    "WORKTEAM_OUTBOX_RETENTION_DAYS": "30",
    "WORKTEAM_OUTBOX_PRUNE_SECONDS": "3600",
    # Beat recounts every organization's users this often and corrects the tally of users
    # where it drifted (tasks/tallies.py).
    "WORKTEAM_TALLY_VERIFY_SECONDS": "86400",
    # The worker's niceness (tasks/priority.py); 10 puts it below the web processes on a shared
    # host: a first sync runs faster, the follow-up work finishes later. 0: the web's priority.
    "WORKTEAM_WORKER_NICE": "0",
}


def get(name: str) -> str:
    if has_app_context():
        value = current_app.config.get(name)
        if value not in (None, ""):
            return str(value)
    return os.environ.get(name) or DEFAULTS[name]


def get_float(name: str) -> float:
    return float(get(name))


def get_int(name: str) -> int:
    return int(get(name))


def queue() -> str:
    return get("WORKTEAM_CELERY_QUEUE")


# Mail tasks wait in a queue of their own, "<queue>.mail": an initial sync licenses thousands of
# users at once, and manager resolution or an admin's re-sync must not wait behind their
# welcome mails. A worker consumes both (tasks/celery_app.py), in turn.
MAIL_TASKS = frozenset({
    "tasks.notifications.send",
    "tasks.notifications.deactivated",
    "tasks.notifications.deactivated_org",
})


def mail_queue() -> str:
    return f"{queue()}.mail"


def queue_for(task_name: str) -> str:
    return mail_queue() if task_name in MAIL_TASKS else queue()


def worker_queues() -> str:
    """The ``-Q`` value of a worker of this deployment."""
    return f"{queue()},{mail_queue()}"
