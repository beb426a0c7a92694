"""``orders.send_refund``: a booked refund sent to its provider (claim → call → record);
``orders.reconcile_payments``: what the providers say and we did not hear (reconcile.py)."""
from __future__ import annotations

import logging

from diandian_common.contracts import load
from diandian_common.timestamps import utcnow

from ..wiring import RETRY, celery, unit_of_work
from . import reconcile, refunds

log = logging.getLogger(__name__)


@celery.task(name="orders.send_refund", **RETRY)
def send_refund(payload: dict) -> str | None:
    """Claimed in one unit of work, sent outside any, recorded in another. A refund that is
    unknown or sent already changes nothing; one the provider refused is retried by the
    next delivery (the provider refunds once per refund id)."""
    refund_id = load("orders.send_refund", payload).refund_id
    with unit_of_work() as uow:
        taken = refunds.claim(uow, refund_id)
    if taken is None:
        return None
    result = refunds.call(taken)
    with unit_of_work() as uow:
        recorded = refunds.record(uow, taken, result)
    log.info("refund %s of order %s sent: %s (%s)", taken.refund_id, taken.order_id, result.reference,
             "succeeded" if result.succeeded else "processing", extra={"order_id": taken.order_id})
    return result.reference if recorded else None


@celery.task(name="orders.reconcile_payments", **RETRY)
def reconcile_payments(payload: dict | None = None) -> dict:
    """Every ``PAYMENT_RECONCILE_SECONDS``: unpaid orders' trades queried (lost
    notifications) or closed (windows passed), unconfirmed refunds queried. The providers
    are asked outside any transaction; each order's outcome is recorded in its own."""
    load("orders.reconcile_payments", payload)
    limit = reconcile.batch_size()
    with unit_of_work() as uow:
        checks = reconcile.claim(uow, utcnow(), limit)
        unconfirmed = reconcile.pending_refunds(uow, limit)
    done: dict[str, int] = {}
    for check in checks:
        asked = reconcile.ask(check)
        with unit_of_work() as uow:
            action = reconcile.record(uow, asked)
        done[action] = done.get(action, 0) + 1
    for taken in unconfirmed:
        succeeded = reconcile.ask_refund(taken)
        if succeeded is None:
            continue
        with unit_of_work() as uow:
            action = refunds.settle(uow.session, taken.order_id, str(taken.refund_id), succeeded)
        done[f"refund_{action}"] = done.get(f"refund_{action}", 0) + 1
    if done:
        log.info("payments reconciled: %s", done)
    return done
