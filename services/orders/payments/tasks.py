"""``orders.send_refund``: a booked refund sent to its provider (claim → call → record)."""
from __future__ import annotations

import logging

from diandian_common.contracts import load

from ..wiring import RETRY, celery, unit_of_work
from . import refunds

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
    reference = refunds.call(taken)
    with unit_of_work() as uow:
        recorded = refunds.record(uow, taken, reference)
    log.info("refund %s of order %s sent: %s", taken.refund_id, taken.order_id, reference,
             extra={"order_id": taken.order_id})
    return reference if recorded else None
