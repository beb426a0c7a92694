"""Celery tasks of the orders service (queue ``orders``) and its periodic jobs."""
from __future__ import annotations

import logging
from datetime import timedelta

from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError

from diandian_common import config
from diandian_common.celery_app import UnsupportedMessage, check_version, make_celery
from diandian_common.db import Database, service_database
from diandian_common.outbox import enqueued, relay, try_relay, utcnow

from . import webhook_sender, webhooks, workflows
from .domain.allocation import InsufficientSerials
from .models import OutboxMessage
from .schemas import CertificateRevokedSchema

log = logging.getLogger(__name__)

celery = make_celery("orders")
celery.conf.beat_schedule = {
    "relay-outbox": {"task": "orders.relay_outbox",
                     "schedule": config.env_float("ORDERS_OUTBOX_RELAY_SECONDS", 2.0)},
    "expire-unpaid": {"task": "orders.expire_unpaid",
                      "schedule": config.env_float("ORDERS_EXPIRY_SWEEP_SECONDS", 60.0)},
    "resend-stuck": {"task": "orders.resend_stuck",
                     "schedule": config.env_float("ORDERS_RECONCILE_SECONDS", 60.0)},
    "purge-idempotency-keys": {"task": "orders.purge_idempotency_keys",
                               "schedule": config.env_float("ORDERS_IDEMPOTENCY_PURGE_SECONDS", 3600.0)},
    "dispatch-webhooks": {"task": "orders.dispatch_webhooks",
                          "schedule": config.env_float("WEBHOOK_DISPATCH_SECONDS", 5.0)},
}



def database() -> Database:
    return service_database("orders")


# Transient database trouble (a lock timeout, a lost connection) is retried with backoff;
# the handlers are idempotent, so a retry after a partial failure is safe.
RETRY = dict(autoretry_for=(DBAPIError,), retry_backoff=True, retry_backoff_max=30,
             retry_jitter=True, max_retries=10)


class RetirementTask(celery.Task):
    """``orders.retire_credits`` that failed for good — its retries exhausted, or an error
    no retry can fix — must not leave a paid order waiting: the order becomes ``failed``,
    its reservation is released and the payment refunded (``on_failure`` runs once, after
    the last attempt; a retry is not a failure)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        payload = args[0] if args else None
        if isinstance(exc, UnsupportedMessage) or not isinstance(payload, dict) or "order_id" not in payload:
            return  # not a message about an order we can name
        reason = f"retirement failed: {exc.__class__.__name__}: {exc}"
        try:
            with database().transaction() as session:
                failed = workflows.fail_retirement(session, payload["order_id"], reason)
        except Exception:
            # The database is still away: the order stays paid and the reconciler re-sends it.
            log.exception("could not mark order %s failed", payload["order_id"])
            return
        if failed:
            log.error("order failed and refunded: %s", reason, extra={"order_id": payload["order_id"]})


@celery.task(name="orders.retire_credits", base=RetirementTask, **RETRY)
def retire_credits(payload: dict) -> None:
    check_version(payload)
    try:
        with database().transaction() as session:
            done = workflows.retire(session, payload["order_id"])
    except InsufficientSerials as exc:
        # The reservation guaranteed the kilograms; only corrupted inventory gets here.
        log.error("retirement of %s failed for good: %s", payload["order_id"], exc)
        with database().transaction() as session:
            workflows.fail_retirement(session, payload["order_id"], f"retirement failed: {exc}")
        return
    if done:
        log.info("order retired", extra={"order_id": payload["order_id"]})
    try_relay(database(), OutboxMessage, celery)


@celery.task(name="orders.certificate_issued", **RETRY)
def certificate_issued(payload: dict) -> None:
    check_version(payload)
    with database().transaction() as session:
        done = workflows.complete(session, payload)
        announced = enqueued(session)
    if done:
        log.info("order completed", extra={"order_id": payload["order_id"]})
    if announced:
        try_relay(database(), OutboxMessage, celery)  # its webhooks, if any endpoint listens


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
    with database().transaction() as session:
        action = workflows.revoke_certificate(session, **message)
    log.info("certificate %s revoked: %s", message["certificate_id"], action,
             extra={"order_id": message["order_id"]})
    try_relay(database(), OutboxMessage, celery)
    return action


@celery.task(name="orders.deliver_webhook", **RETRY)
def deliver_webhook(payload: dict) -> str | None:
    """One attempt of a webhook delivery ``{delivery_id}``: claimed in one transaction,
    POSTed outside any, the outcome recorded in another (with the next retry's time).
    A message for a delivery that is not due, done, or being sent changes nothing."""
    check_version(payload)
    current = webhooks.settings()
    with database().transaction() as session:
        taken = webhooks.claim(session, int(payload["delivery_id"]), utcnow(), current)
    if taken is None:
        return None
    started_at = utcnow()
    outcome = webhook_sender.post(taken.url, taken.body, taken.headers(), current)
    with database().transaction() as session:
        status = webhooks.record(session, taken, started_at, outcome, utcnow(), current)
    log.info("webhook %s of %s, attempt %d: %s", taken.event_type, taken.event_id, taken.attempt,
             outcome.status_code or outcome.error, extra={"delivery_id": taken.delivery_id,
                                                         "duration_ms": outcome.duration_ms})
    return status


@celery.task(name="orders.dispatch_webhooks", **RETRY)
def dispatch_webhooks(payload: dict | None = None) -> int:
    """Queue the deliveries whose (re)try is due (every ``WEBHOOK_DISPATCH_SECONDS``)."""
    with database().transaction() as session:
        queued = webhooks.dispatch_due(session, utcnow(), webhooks.settings())
    if queued:
        try_relay(database(), OutboxMessage, celery)
    return queued


@celery.task(name="orders.relay_outbox")
def relay_outbox(payload: dict | None = None) -> int:
    return relay(database(), OutboxMessage, celery)


@celery.task(name="orders.expire_unpaid", **RETRY)
def expire_unpaid(payload: dict | None = None) -> int:
    with database().transaction() as session:
        return workflows.expire_unpaid(session)


@celery.task(name="orders.resend_stuck", **RETRY)
def resend_stuck(payload: dict | None = None) -> int:
    threshold = timedelta(seconds=config.env_int("ORDERS_STUCK_AFTER_SECONDS", 300))
    with database().transaction() as session:
        count = workflows.resend_stuck(session, threshold)
    if count:
        log.warning("re-sent the next step of %d stuck orders", count)
        try_relay(database(), OutboxMessage, celery)
    return count


@celery.task(name="orders.purge_idempotency_keys", **RETRY)
def purge_idempotency_keys(payload: dict | None = None) -> int:
    """Idempotency keys past their TTL (at least 24 h) are forgotten."""
    with database().transaction() as session:
        purged = workflows.purge_idempotency_keys(session)
    if purged:
        log.info("purged %d expired idempotency keys", purged)
    return purged
