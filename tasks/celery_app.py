"""Process entry point of the ``celery`` command: ``celery -A tasks.celery_app worker``
(``beat``, ``flower``). Builds the Flask app for settings and the app context tasks run in,
registers the task modules and the beat schedule."""

from __future__ import annotations

import importlib

from celery.signals import worker_process_init
from kombu import Queue

from tasks import settings
from web import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
app = celery_app

TASK_MODULES = (
    "tasks.outbox",
    "tasks.managers",
    "tasks.licenses",
    "tasks.notifications",
    "tasks.groups",
    "tasks.resync",
    "tasks.audit",
    "tasks.tallies",
)
for _name in TASK_MODULES:
    importlib.import_module(_name)

with flask_app.app_context():
    _queue = settings.queue()
    _every = {
        name: settings.get_float(name)
        for name in (
            "WORKTEAM_SWEEP_SECONDS",
            "WORKTEAM_MANAGER_SWEEP_SECONDS",
            "WORKTEAM_LICENSE_SWEEP_SECONDS",
            "WORKTEAM_AUDIT_PRUNE_SECONDS",
            "WORKTEAM_OUTBOX_PRUNE_SECONDS",
            "WORKTEAM_TALLY_VERIFY_SECONDS",
        )
    }

celery_app.conf.task_default_queue = _queue
# A worker started without -Q consumes both queues (tasks/settings.py says why mail has its own).
celery_app.conf.task_queues = (Queue(_queue), Queue(settings.mail_queue()))
celery_app.conf.beat_schedule = {
    # Republish outbox jobs left pending (broker down at commit, messages lost with a worker).
    "outbox-sweep": {
        "task": "tasks.outbox.sweep",
        "schedule": _every["WORKTEAM_SWEEP_SECONDS"],
        "options": {"queue": _queue},
    },
    "managers-sweep": {
        "task": "tasks.managers.sweep",
        "schedule": _every["WORKTEAM_MANAGER_SWEEP_SECONDS"],
        "options": {"queue": _queue},
    },
    "licenses-sweep": {
        "task": "tasks.licenses.sweep",
        "schedule": _every["WORKTEAM_LICENSE_SWEEP_SECONDS"],
        "options": {"queue": _queue},
    },
    # Take over a re-sync whose worker died (no checkpoint for WORKTEAM_RESYNC_STALE_SECONDS).
    "resync-sweep": {"task": "tasks.resync.sweep", "schedule": 60, "options": {"queue": _queue}},
    # Delete audit rows past WORKTEAM_AUDIT_RETENTION_DAYS (tasks/audit.py).
    "audit-prune": {
        "task": "tasks.audit.prune",
        "schedule": _every["WORKTEAM_AUDIT_PRUNE_SECONDS"],
        "options": {"queue": _queue},
    },
    # Delete finished jobs and mail records past WORKTEAM_OUTBOX_RETENTION_DAYS (tasks/outbox.py).
    "outbox-prune": {
        "task": "tasks.outbox.prune",
        "schedule": _every["WORKTEAM_OUTBOX_PRUNE_SECONDS"],
        "options": {"queue": _queue},
    },
    # Recount each organization's users and correct a tally that drifted (tasks/tallies.py).
    "tallies-verify": {
        "task": "tasks.tallies.verify",
        "schedule": _every["WORKTEAM_TALLY_VERIFY_SECONDS"],
        "options": {"queue": _queue},
    },
}


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    # A forked pool process must not share the parent's pooled database connections.
    from web.database import dispose

    dispose(flask_app, close=False)
