"""The tally check: beat runs ``verify`` every WORKTEAM_TALLY_VERIFY_SECONDS (daily), which
recounts each organization's users and corrects a tally that drifted (models/tallies.py), with
a warning: the tally is kept exact by the code that writes users, so a drift means something
wrote them another way. A licensed or waiting count put right is acted on by the next license
sweep (tasks/licenses.py, every WORKTEAM_LICENSE_SWEEP_SECONDS)."""

from __future__ import annotations

import logging

from celery import shared_task
from sqlalchemy import select

from models import tallies
from models.organization import Organization
from tasks import db

log = logging.getLogger("workteam.tallies")


@shared_task(name="tasks.tallies.verify", ignore_result=True)
def verify() -> int:
    """Recount every organization, each in a transaction of its own (a few hundred ms at a
    million users); return how many tallies were corrected."""
    with db.session() as session:
        org_ids = list(session.scalars(select(Organization.id).order_by(Organization.id)))
    corrected = 0
    for org_id in org_ids:
        with db.session() as session:
            drift = tallies.recount(session, org_id)
            session.commit()
        if drift:
            corrected += 1
            log.warning("org %s: the tally of users was off (corrected by %+d users, "
                        "%+d licensed, %+d waiting)", org_id, drift.users, drift.licensed,
                        drift.waiting)
    return corrected
