"""Tasks of ordering: the certificate's arrival and revocation, ranking's and certificates'
acknowledgements, expiry, repair (stuck orders, the pipeline audit), key purge."""
from __future__ import annotations

import logging
from datetime import timedelta

import redis
from kombu.exceptions import KombuError

from diandian_common import config
from diandian_common.celery_app import send
from diandian_common.contracts import InvalidMessage, build, load
from diandian_common.metrics import count_pipeline_resent

from ..ledger import registry
from ..wiring import RETRY, celery, unit_of_work
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
    acknowledge_revocation(message.order_id)
    return action


def acknowledge_revocation(order_id: str) -> None:
    """Tell certificates that orders applied the revocation (every time, a repeated one
    included): its revocation audit sends ``orders.certificate_revoked`` again until it hears
    this. Sent directly, not through the outbox: a lost acknowledgement only brings one more
    copy, which changes nothing."""
    try:
        send(celery, "certificates.revocation_recorded",
             build("certificates.revocation_recorded", order_id=order_id, recorded_by="orders"))
    except (KombuError, redis.RedisError, OSError) as exc:
        log.warning("could not acknowledge the revocation of order %s (%s); certificates' revocation "
                    "audit will send it again", order_id, exc, extra={"order_id": order_id})


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
    """Ask ranking again about the contributions it never acknowledged (service.audit_pipeline)
    and certificates about the registry notices it never confirmed (registry.resend_unconfirmed)."""
    load("orders.audit_pipeline", payload)
    grace = timedelta(seconds=config.pipeline_audit_seconds())
    with unit_of_work() as uow:
        report = service.audit_pipeline(uow, grace)
        registry_unconfirmed, registry_resent = registry.resend_unconfirmed(uow, grace)
    count_pipeline_resent("orders", "ranking.record", report.resent)
    count_pipeline_resent("orders", registry.SHOW_REGISTRY_TASK, registry_resent)
    counts = {"unacknowledged": report.unacknowledged, "resent": report.resent, "waiting": report.waiting,
              "registry_unconfirmed": registry_unconfirmed, "registry_resent": registry_resent}
    if report.unacknowledged:
        log.warning("pipeline audit: %d retired orders without ranking's acknowledgement after %d s: "
                    "ranking.record sent again for %d, %d wait for an earlier copy",
                    report.unacknowledged, grace.total_seconds(), report.resent, report.waiting, extra=counts)
    else:
        log.info("pipeline audit: ranking acknowledged every order retired over %d s ago",
                 grace.total_seconds(), extra=counts)
    if registry_unconfirmed:
        log.warning("pipeline audit: %d orders' registry records not confirmed by certificates after %d s: "
                    "certificates.show_registry sent again for %d, %d wait for an earlier copy",
                    registry_unconfirmed, grace.total_seconds(), registry_resent,
                    registry_unconfirmed - registry_resent, extra=counts)
    return counts


@celery.task(name="orders.contribution_recorded", **RETRY)
def contribution_recorded(payload: dict) -> bool:
    """Ranking holds the order's contribution: the pipeline audit stops asking for it."""
    order_id = load("orders.contribution_recorded", payload).order_id
    with unit_of_work() as uow:
        return service.contribution_recorded(uow, order_id)


@celery.task(name="orders.registry_shown", **RETRY)
def registry_shown(payload: dict) -> bool:
    """Certificates holds the order's registry notice: the pipeline audit stops sending it."""
    shown = load("orders.registry_shown", payload)
    with unit_of_work() as uow:
        return registry.registry_shown(uow, shown.order_id, shown.anchored_kg)


@celery.task(name="orders.purge_idempotency_keys", **RETRY)
def purge_idempotency_keys(payload: dict | None = None) -> int:
    """Idempotency keys past their TTL (at least 24 h) are forgotten."""
    load("orders.purge_idempotency_keys", payload)
    with unit_of_work() as uow:
        purged = service.purge_idempotency_keys(uow)
    if purged:
        log.info("purged %d expired idempotency keys", purged)
    return purged
