"""``orders.send_refund``: a booked refund sent to its provider (claim → call → record)."""
from __future__ import annotations

import logging

from diandian_common.celery_app import check_version

from ..wiring import RETRY, celery, unit_of_work
from . import refunds

log = logging.getLogger(__name__)


@celery.task(name=refunds.SEND_REFUND_TASK, **RETRY)
def send_refund(payload: dict) -> str | None:
    """Claimed in one unit of work, sent outside any, recorded in another. A refund that is
    unknown or sent already changes nothing; one the provider refused is retried by the
    next delivery (the provider refunds once per refund id)."""
    check_version(payload)
    with unit_of_work() as uow:
        taken = refunds.claim(uow.session, int(payload["refund_id"]))
    if taken is None:
        return None
    reference = refunds.call(taken)
    with unit_of_work() as uow:
        recorded = refunds.record(uow.session, taken, reference)
    log.info("refund %s of order %s sent: %s", taken.refund_id, taken.order_id, reference,
             extra={"order_id": taken.order_id})
    return reference if recorded else None
