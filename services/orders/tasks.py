"""The orders worker (``celery -A orders.tasks worker -Q orders``): every task of every
package, registered on the one Celery app of orders/wiring.py, and the outbox relay."""
from __future__ import annotations

from diandian_common.contracts import load

from .ledger.tasks import retire_credits
from .ordering.tasks import (
    audit_pipeline,
    certificate_issued,
    certificate_revoked,
    contribution_recorded,
    expire_unpaid,
    purge_idempotency_keys,
    registry_shown,
    resend_stuck,
)
from .payments.tasks import reconcile_payments, send_refund
from .webhooks.tasks import deliver_webhook, dispatch_webhooks
from .wiring import celery, wiring

__all__ = ["audit_pipeline", "celery", "certificate_issued", "certificate_revoked", "contribution_recorded",
           "deliver_webhook", "dispatch_webhooks", "expire_unpaid", "purge_idempotency_keys",
           "reconcile_payments", "registry_shown", "relay_outbox", "resend_stuck", "retire_credits",
           "send_refund"]


@celery.task(name="orders.relay_outbox")
def relay_outbox(payload: dict | None = None) -> int:
    load("orders.relay_outbox", payload)
    return wiring.relay()
