"""``orders.retire_credits``: the retirement of a paid order."""
from __future__ import annotations

import logging

from diandian_common.contracts import InvalidMessage, UnsupportedMessage, load

from ..wiring import RETRY, celery, unit_of_work
from . import service
from .domain.allocation import InsufficientSerials

log = logging.getLogger(__name__)


class RetirementTask(celery.Task):
    """``orders.retire_credits`` that failed for good — its retries exhausted, or an error
    no retry can fix — must not leave a paid order waiting: the order becomes ``failed``,
    its reservation is released and the payment refunded (``on_failure`` runs once, after
    the last attempt; a retry is not a failure)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        payload = args[0] if args else None
        if isinstance(exc, (UnsupportedMessage, InvalidMessage)):
            return  # not a message about an order we can name
        reason = f"retirement failed: {exc.__class__.__name__}: {exc}"
        try:
            with unit_of_work() as uow:
                failed = service.fail_retirement(uow, payload["order_id"], reason)
        except Exception:
            # The database is still away: the order stays paid and the reconciler re-sends it.
            log.exception("could not mark order %s failed", payload["order_id"])
            return
        if failed:
            log.error("order failed and refunded: %s", reason, extra={"order_id": payload["order_id"]})


@celery.task(name="orders.retire_credits", base=RetirementTask, **RETRY)
def retire_credits(payload: dict) -> None:
    order_id = load("orders.retire_credits", payload).order_id
    try:
        with unit_of_work() as uow:
            done = service.retire(uow, order_id)
    except InsufficientSerials as exc:
        # The reservation guaranteed the kilograms; only corrupted inventory gets here.
        log.error("retirement of %s failed for good: %s", order_id, exc)
        with unit_of_work() as uow:
            service.fail_retirement(uow, order_id, f"retirement failed: {exc}")
        return
    if done:
        log.info("order retired", extra={"order_id": order_id})
