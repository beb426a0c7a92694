"""Tasks of ordering: the certificate's arrival and revocation, ranking's acknowledgement, expiry,
repair (stuck orders, the pipeline audit), key purge."""
from __future__ import annotations

import logging
from datetime import timedelta

from diandian_common import config
from diandian_common.contracts import InvalidMessage, load
from diandian_common.metrics import count_pipeline_resent

from ..wiring import RETRY, celery, pipeline_audit_seconds, unit_of_work
from . import service

log = logging.getLogger(__name__)


@celery.task(name="orders.certificate_issued", **RETRY)
def certificate_issued(payload: dict) -> None:
    issued = load("orders.certificate_issued", payload)
    with unit_of_work() as uow:
        done = service.complete(uow, order_id=issued.order_id, certificate_id=issued.certificate_id,
                                verify_code=issued.verify_code, pdf_url=issued.pdf_url,
                                verify_url=issued.verify_url)
    if done:
        log.info("order completed", extra={"order_id": issued.order_id})


@celery.task(name="orders.certificate_revoked", **RETRY)
def certificate_revoked(payload: dict) -> str:
    """The certificates service revoked an order's certificate: ``{order_id,
    certificate_id, reason, refund}``. Marks the order, announces
    ``certificate.revoked`` and, with ``refund``, refunds the payment through its
    provider and reverses the split. Twice has the effect of once."""
    try:
        message = load("orders.certificate_revoked", payload)
    except InvalidMessage as exc:
        log.error("orders.certificate_revoked: invalid payload %s: %s", payload, exc.errors)
        return "invalid"
    with unit_of_work() as uow:
        action = service.revoke_certificate(uow, order_id=message.order_id, certificate_id=message.certificate_id,
                                            reason=message.reason, refund=message.refund)
    log.info("certificate %s revoked: %s", message.certificate_id, action, extra={"order_id": message.order_id})
    return action


@celery.task(name="orders.expire_unpaid", **RETRY)
def expire_unpaid(payload: dict | None = None) -> int:
    load("orders.expire_unpaid", payload)
    with unit_of_work() as uow:
        return service.expire_unpaid(uow)


def stuck_after() -> timedelta:
    return timedelta(seconds=config.env_int("ORDERS_STUCK_AFTER_SECONDS", 300))


@celery.task(name="orders.resend_stuck", **RETRY)
def resend_stuck(payload: dict | None = None) -> int:
    load("orders.resend_stuck", payload)
    with unit_of_work() as uow:
        resent = service.resend_stuck(uow, stuck_after())
    for task_name, count in resent.items():
        count_pipeline_resent("orders", task_name, count)
    total = sum(resent.values())
    if total:
        log.warning("re-sent the next step of %d stuck orders (%s)", total,
                    ", ".join(f"{name}: {count}" for name, count in resent.items() if count))
    return total


@celery.task(name="orders.audit_pipeline", **RETRY)
def audit_pipeline(payload: dict | None = None) -> dict:
    """Ask ranking again about the contributions it never acknowledged (service.audit_pipeline)."""
    load("orders.audit_pipeline", payload)
    grace = timedelta(seconds=pipeline_audit_seconds())
    with unit_of_work() as uow:
        report = service.audit_pipeline(uow, grace)
    count_pipeline_resent("orders", "ranking.record", report.resent)
    counts = {"unacknowledged": report.unacknowledged, "resent": report.resent, "waiting": report.waiting}
    if report.unacknowledged:
        log.warning("pipeline audit: %d retired orders without ranking's acknowledgement after %d s: "
                    "ranking.record sent again for %d, %d wait for an earlier copy",
                    report.unacknowledged, grace.total_seconds(), report.resent, report.waiting, extra=counts)
    else:
        log.info("pipeline audit: ranking acknowledged every order retired over %d s ago",
                 grace.total_seconds(), extra=counts)
    return counts


@celery.task(name="orders.contribution_recorded", **RETRY)
def contribution_recorded(payload: dict) -> bool:
    """Ranking holds the order's contribution: the pipeline audit stops asking for it."""
    order_id = load("orders.contribution_recorded", payload).order_id
    with unit_of_work() as uow:
        return service.contribution_recorded(uow, order_id)


@celery.task(name="orders.purge_idempotency_keys", **RETRY)
def purge_idempotency_keys(payload: dict | None = None) -> int:
    """Idempotency keys past their TTL (at least 24 h) are forgotten."""
    load("orders.purge_idempotency_keys", payload)
    with unit_of_work() as uow:
        purged = service.purge_idempotency_keys(uow)
    if purged:
        log.info("purged %d expired idempotency keys", purged)
    return purged
