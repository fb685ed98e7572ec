"""Process entry point of the ``celery`` command: ``celery -A tasks.celery_app worker``
(``beat``, ``flower``). Builds the Flask app for settings and the app context tasks run in,
registers the task modules and the beat schedule."""

from __future__ import annotations

import importlib

from celery.signals import worker_init, worker_process_init
from kombu import Queue

from tasks import settings
from tasks.priority import lower_priority
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

    def _periodic(task: str, every_setting: str) -> dict:
        """A beat entry: ``task`` every WORKTEAM_..._SECONDS, on this deployment's queue."""
        return {"task": task, "schedule": settings.get_float(every_setting),
                "options": {"queue": _queue}}

    _beat_schedule = {
        # Republish outbox jobs left pending (broker down at commit, messages lost with a worker).
        "outbox-sweep": _periodic("tasks.outbox.sweep", "WORKTEAM_SWEEP_SECONDS"),
        "managers-sweep": _periodic("tasks.managers.sweep", "WORKTEAM_MANAGER_SWEEP_SECONDS"),
        "licenses-sweep": _periodic("tasks.licenses.sweep", "WORKTEAM_LICENSE_SWEEP_SECONDS"),
        # Take over a re-sync whose worker died (no checkpoint for WORKTEAM_RESYNC_STALE_SECONDS).
        "resync-sweep": {"task": "tasks.resync.sweep", "schedule": 60,
                         "options": {"queue": _queue}},
        # Delete audit rows past WORKTEAM_AUDIT_RETENTION_DAYS (tasks/audit.py).
        "audit-prune": _periodic("tasks.audit.prune", "WORKTEAM_AUDIT_PRUNE_SECONDS"),
        # Delete finished jobs, mail records and exports past WORKTEAM_OUTBOX_RETENTION_DAYS
        # (tasks/outbox.py).
        "outbox-prune": _periodic("tasks.outbox.prune", "WORKTEAM_OUTBOX_PRUNE_SECONDS"),
        # Recount each organization's users and correct a tally that drifted (tasks/tallies.py).
        "tallies-verify": _periodic("tasks.tallies.verify", "WORKTEAM_TALLY_VERIFY_SECONDS"),
    }

celery_app.conf.task_default_queue = _queue
# A worker started without -Q consumes both queues (tasks/settings.py says why mail has its own).
celery_app.conf.task_queues = (Queue(_queue), Queue(settings.mail_queue()))
celery_app.conf.beat_schedule = _beat_schedule


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    # A forked pool process must not share the parent's pooled database connections.
    from web.database import dispose

    dispose(flask_app, close=False)


@worker_init.connect
def _below_the_web(**_: object) -> None:
    # In the worker's main process before its pool starts, so every pool thread (or forked
    # pool process) inherits it; beat and flower keep theirs.
    with flask_app.app_context():
        lower_priority(settings.get_int("WORKTEAM_WORKER_NICE"))
