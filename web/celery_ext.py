"""Celery wired as in Flask's own pattern: tasks run inside an app context."""

from __future__ import annotations

import os

from celery import Celery, Task
from flask import Flask


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        # A job's attempts are counted on its row (WORKTEAM_TASK_MAX_ATTEMPTS, tasks/outbox.py),
        # not by Celery: with Celery's default of 3 (which ``retry(max_retries=None)`` keeps),
        # the 4th transient failure failed the task (an ERROR line, FAILURE in Flower) while
        # its job was still pending, and only the outbox sweep tried it again, minutes later.
        max_retries = None

        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=app.config["CELERY_BROKER_URL"],
        result_backend=app.config["REDIS_URL"],
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_send_sent_event=True,
        # Off, as in Celery's default: a monitor turns task events on while it watches (Flower
        # does so every few seconds: its --enable-events default; tests/integration/
        # test_flower.py runs a worker started without -E). Sent always, they cost the worker
        # three Redis publishes per task (13-18% of its CPU under a sync, bench measured).
        worker_send_task_events=False,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        # Redis redelivers an unacknowledged message after the visibility timeout. With
        # acks_late a task is acknowledged only when it ends, so the timeout must exceed the
        # longest task (a re-sync checkpoints, so one run stays well under this); too short and
        # a long task runs twice, too long and a message lost with its worker waits that long
        # (the outbox sweep republishes it sooner anyway).
        broker_transport_options={
            "visibility_timeout": 3600,
            "socket_connect_timeout": app.config["PUBLISH_TIMEOUT"],
            "socket_timeout": 5,
            # A publish gives up on the first failed connection (Redis or AMQP): the job stays
            # pending for the sweep. kombu's reconnect loop held the publishing thread 6 s per
            # attempt, with every later publish of the process queued behind it.
            "max_retries": 0,
        },
        # One queue per deployment (tests: one per run); what is published without naming a
        # queue goes where the workers listen.
        task_default_queue=app.config.get("WORKTEAM_CELERY_QUEUE")
        or os.environ.get("WORKTEAM_CELERY_QUEUE")
        or "default",
        timezone="UTC",
    )
    celery_app.conf.update(app.config.get("CELERY", {}))
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
