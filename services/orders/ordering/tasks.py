"""Tasks of ordering: the certificate's arrival and revocation, expiry, repair, key purge."""
from __future__ import annotations

import logging
from datetime import timedelta

from marshmallow import ValidationError

from diandian_common import config
from diandian_common.celery_app import check_version

from ..wiring import RETRY, celery, unit_of_work
from . import service
from .schemas import CertificateRevokedSchema

log = logging.getLogger(__name__)


@celery.task(name="orders.certificate_issued", **RETRY)
def certificate_issued(payload: dict) -> None:
    check_version(payload)
    with unit_of_work() as uow:
        done = service.complete(uow, order_id=payload["order_id"], certificate_id=payload["certificate_id"],
                                verify_code=payload.get("verify_code"), pdf_url=payload.get("pdf_url"),
                                verify_url=payload.get("verify_url"))
    if done:
        log.info("order completed", extra={"order_id": payload["order_id"]})


@celery.task(name="orders.certificate_revoked", **RETRY)
def certificate_revoked(payload: dict) -> str:
    """The certificates service revoked an order's certificate: ``{order_id,
    certificate_id, reason, refund}``. Marks the order, announces
    ``certificate.revoked`` and, with ``refund``, refunds the payment through its
    provider and reverses the split. Twice has the effect of once."""
    check_version(payload)
    try:
        message = CertificateRevokedSchema().load({k: v for k, v in payload.items() if k != "v"})
    except ValidationError as exc:
        log.error("orders.certificate_revoked: invalid payload %s: %s", payload, exc.messages)
        return "invalid"
    with unit_of_work() as uow:
        action = service.revoke_certificate(uow, **message)
    log.info("certificate %s revoked: %s", message["certificate_id"], action,
             extra={"order_id": message["order_id"]})
    return action


@celery.task(name="orders.expire_unpaid", **RETRY)
def expire_unpaid(payload: dict | None = None) -> int:
    with unit_of_work() as uow:
        return service.expire_unpaid(uow)


@celery.task(name="orders.resend_stuck", **RETRY)
def resend_stuck(payload: dict | None = None) -> int:
    threshold = timedelta(seconds=config.env_int("ORDERS_STUCK_AFTER_SECONDS", 300))
    with unit_of_work() as uow:
        count = service.resend_stuck(uow, threshold)
    if count:
        log.warning("re-sent the next step of %d stuck orders", count)
    return count


@celery.task(name="orders.purge_idempotency_keys", **RETRY)
def purge_idempotency_keys(payload: dict | None = None) -> int:
    """Idempotency keys past their TTL (at least 24 h) are forgotten."""
    with unit_of_work() as uow:
        purged = service.purge_idempotency_keys(uow)
    if purged:
        log.info("purged %d expired idempotency keys", purged)
    return purged
