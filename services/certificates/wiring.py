"""The certificates service's wiring: its Celery app and beat schedule, and how routes, tasks
and CLI commands reach its database and broker (``unit_of_work()``). ``create_app`` binds the
database URL it was given; a worker uses ``CERTIFICATES_DATABASE_URL``/``DATABASE_URL``.

The worker still starts from ``certificates.tasks`` (which re-exports ``celery``), so every
task is registered before it consumes; publishing goes by task name through the outbox, which
the unit of work relays after each commit and ``certificates.relay_outbox`` catches up on."""
from __future__ import annotations

from diandian_common import config
from diandian_common.celery_app import make_celery
from diandian_common.uow import ServiceWiring, UnitOfWork

from .models import OutboxMessage

celery = make_celery("certificates")

# Unsent outbox rows (the broker was down right after a commit) are published by this
# periodic task where a beat scheduler runs (``celery -A certificates.tasks beat``).
OUTBOX_RELAY_SECONDS = config.env_float("CERTIFICATES_OUTBOX_RELAY_SECONDS", 5.0)
celery.conf.beat_schedule = {
    "relay-outbox": {"task": "certificates.relay_outbox", "schedule": OUTBOX_RELAY_SECONDS,
                     "args": [{"v": 1}], "options": {"expires": OUTBOX_RELAY_SECONDS}},
    # Revocations orders or ranking never confirmed are sent again (service.audit_revocations).
    "audit-revocations": {"task": "certificates.audit_revocations",
                          "schedule": config.pipeline_audit_seconds(), "args": [{"v": 1}]},
}

wiring = ServiceWiring("certificates", outbox_model=OutboxMessage, celery=celery)


def unit_of_work() -> UnitOfWork:
    return wiring.unit_of_work()
