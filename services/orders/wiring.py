"""The orders service's wiring: its Celery app and beat schedule, and how routes, tasks and
CLI commands reach its database and broker (``wiring.unit_of_work()``). ``create_app`` binds
the database URL it was given; a worker uses ``ORDERS_DATABASE_URL``/``DATABASE_URL``."""
from __future__ import annotations

from diandian_common import config
from diandian_common.celery_app import make_celery
from diandian_common.db import TRANSIENT_ERRORS
from diandian_common.uow import ServiceWiring, UnitOfWork

from .models import OutboxMessage

celery = make_celery("orders")
celery.conf.beat_schedule = {
    "relay-outbox": {"task": "orders.relay_outbox",
                     "schedule": config.env_float("ORDERS_OUTBOX_RELAY_SECONDS", 2.0)},
    "expire-unpaid": {"task": "orders.expire_unpaid",
                      "schedule": config.env_float("ORDERS_EXPIRY_SWEEP_SECONDS", 60.0)},
    "reconcile-payments": {"task": "orders.reconcile_payments",
                           "schedule": config.env_float("PAYMENT_RECONCILE_SECONDS", 60.0)},
    "resend-stuck": {"task": "orders.resend_stuck",
                     "schedule": config.env_float("ORDERS_RECONCILE_SECONDS", 60.0)},
    "audit-pipeline": {"task": "orders.audit_pipeline",
                       "schedule": config.pipeline_audit_seconds()},
    "purge-idempotency-keys": {"task": "orders.purge_idempotency_keys",
                               "schedule": config.env_float("ORDERS_IDEMPOTENCY_PURGE_SECONDS", 3600.0)},
    "dispatch-webhooks": {"task": "orders.dispatch_webhooks",
                          "schedule": config.env_float("WEBHOOK_DISPATCH_SECONDS", 5.0)},
}

wiring = ServiceWiring("orders", outbox_model=OutboxMessage, celery=celery)


def unit_of_work() -> UnitOfWork:
    return wiring.unit_of_work()


# Transient database trouble (a lock timeout, a lost connection) is retried with backoff;
# the handlers are idempotent, so a retry after a partial failure is safe. A permanent
# database error (a programming error, bad data) fails the message at once (diandian_common.uow).
RETRY = dict(autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, retry_backoff_max=30,
             retry_jitter=True, max_retries=10)
