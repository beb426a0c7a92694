"""Tasks of outbound webhooks: one delivery attempt, and the dispatch of those due."""
from __future__ import annotations

import logging

from diandian_common.contracts import load
from diandian_common.timestamps import utcnow

from ..wiring import RETRY, celery, unit_of_work
from . import sender, service

log = logging.getLogger(__name__)


@celery.task(name="orders.deliver_webhook", **RETRY)
def deliver_webhook(payload: dict) -> str | None:
    """One attempt of a webhook delivery ``{delivery_id}``: claimed in one transaction,
    POSTed outside any, the outcome recorded in another (with the next retry's time).
    A message for a delivery that is not due, done, or being sent changes nothing."""
    delivery_id = load("orders.deliver_webhook", payload).delivery_id
    current = service.settings()
    with unit_of_work() as uow:
        taken = service.claim(uow, delivery_id, utcnow(), current)
    if taken is None:
        return None
    started_at = utcnow()
    outcome = sender.post(taken.url, taken.body, taken.headers(), current)
    with unit_of_work() as uow:
        status = service.record(uow, taken, started_at, outcome, utcnow(), current)
    log.info("webhook %s of %s, attempt %d: %s", taken.event_type, taken.event_id, taken.attempt,
             outcome.status_code or outcome.error, extra={"delivery_id": taken.delivery_id,
                                                         "duration_ms": outcome.duration_ms})
    return status


@celery.task(name="orders.dispatch_webhooks", **RETRY)
def dispatch_webhooks(payload: dict | None = None) -> int:
    """Queue the deliveries whose (re)try is due (every ``WEBHOOK_DISPATCH_SECONDS``)."""
    load("orders.dispatch_webhooks", payload)
    with unit_of_work() as uow:
        return service.dispatch_due(uow, utcnow(), service.settings())
