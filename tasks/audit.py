"""Audit retention: beat runs ``prune`` every WORKTEAM_AUDIT_PRUNE_SECONDS, deleting audit rows
older than WORKTEAM_AUDIT_RETENTION_DAYS (0 keeps them forever). One row per SCIM request grows
without end otherwise: an IdP that re-syncs a million users a day adds a million rows a day."""

from __future__ import annotations

import datetime as dt
import logging
import time

from celery import shared_task
from flask import current_app

from models import audit
from models.db import utcnow
from tasks import db

log = logging.getLogger("workteam.audit")

RUN_SECONDS = 60  # one run stops after this; the next continues where it stopped


@shared_task(name="tasks.audit.prune", ignore_result=True)
def prune() -> int:
    """Delete expired audit rows in batches, each in a transaction of its own (short locks;
    a run stopped midway has kept what it deleted). Returns how many went."""
    days = current_app.config["AUDIT_RETENTION_DAYS"]
    if days <= 0:
        return 0
    cutoff = utcnow() - dt.timedelta(days=days)
    deadline = time.monotonic() + RUN_SECONDS
    total = 0
    while time.monotonic() < deadline:
        with db.session() as session:
            deleted = audit.prune(session, cutoff)
            session.commit()
        if not deleted:
            break
        total += deleted
    if total:
        log.info("deleted %d audit events older than %s", total, cutoff.isoformat())
    return total
