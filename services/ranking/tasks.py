"""Celery tasks of the ranking service (queue ``ranking``): ``ranking.record``,
``ranking.revoke`` and the periodic ``ranking.reconcile``; their payloads are loaded through
``diandian_common.contracts`` (docs/contract.md, "Messages"). The Celery app and its beat
schedule are in ranking/wiring.py; the worker runs ``celery -A ranking.tasks worker``.

Each task hands its service function the unit-of-work factory (``wiring.unit_of_work``)
rather than one unit of work: the database step commits in a unit of work of its own
before the boards in Redis change (ranking/service.py says why).

All three are idempotent. A payload that breaks its contract fails at once, untouched.
``ranking.record`` ends by acknowledging the contribution to orders
(``orders.contribution_recorded``), which sends it again until it hears that; ``ranking.revoke``
acknowledges the revocation to certificates (``certificates.revocation_recorded``) likewise.
Temporary failures (Redis or the database unreachable, a rebuild holding the boards) are
retried with backoff; the reconciliation repairs whatever still slips through.
"""
from __future__ import annotations

import logging
from dataclasses import asdict

import redis
from kombu.exceptions import KombuError

from diandian_common.celery_app import send
from diandian_common.contracts import build, load
from diandian_common.db import TRANSIENT_ERRORS

from . import reconcile as reconciliation
from . import service, settings, store
from .wiring import celery, unit_of_work

__all__ = ["celery", "reconcile", "record", "revoke"]

log = logging.getLogger(__name__)

TEMPORARY_ERRORS = (redis.RedisError, *TRANSIENT_ERRORS, service.RebuildInProgress)
MAX_RETRIES = 200          # with the delays below: about 1 h 40 min of trying
UNKNOWN_ORDER_RETRIES = 20  # a revocation may overtake its record: wait ~10 min for it


def _retry_delay(retries: int) -> int:
    return min(30, 2 ** retries)


@celery.task(name="ranking.record", bind=True, max_retries=MAX_RETRIES)
def record(self, payload: dict) -> dict:
    message = load("ranking.record", payload)
    try:
        outcome = service.record(unit_of_work, store.writer(), message, settings.now())
    except TEMPORARY_ERRORS as exc:
        raise self.retry(exc=exc, countdown=_retry_delay(self.request.retries))
    acknowledge(message.order_id)
    return asdict(outcome)


def acknowledge(order_id: str) -> None:
    """Tell orders that the contribution is recorded (``orders.contribution_recorded``),
    every time, a repeated record included: orders sends ``ranking.record`` again until it
    hears this. Sent directly, not through an outbox: an acknowledgement lost on the way is
    asked for again by orders' pipeline audit, and the contribution stays recorded either way."""
    try:
        send(celery, "orders.contribution_recorded", build("orders.contribution_recorded", order_id=order_id))
    except (KombuError, redis.RedisError, OSError) as exc:
        log.warning("could not acknowledge the contribution of order %s (%s); orders' pipeline audit "
                    "will send ranking.record again", order_id, exc, extra={"order_id": order_id})


@celery.task(name="ranking.revoke", bind=True, max_retries=MAX_RETRIES)
def revoke(self, payload: dict) -> dict:
    order_id = load("ranking.revoke", payload).order_id
    try:
        outcome = service.revoke(unit_of_work, store.writer(), order_id, settings.now())
    except service.UnknownOrder as exc:
        if self.request.retries >= UNKNOWN_ORDER_RETRIES:
            raise
        raise self.retry(exc=exc, countdown=30)
    except TEMPORARY_ERRORS as exc:
        raise self.retry(exc=exc, countdown=_retry_delay(self.request.retries))
    acknowledge_revocation(order_id)
    return asdict(outcome)


def acknowledge_revocation(order_id: str) -> None:
    """Tell certificates that the revocation is applied (``certificates.revocation_recorded``),
    every time: certificates' revocation audit sends ``ranking.revoke`` again until it hears
    this. Sent directly, like :func:`acknowledge`: a lost one only brings one more copy."""
    try:
        send(celery, "certificates.revocation_recorded",
             build("certificates.revocation_recorded", order_id=order_id, recorded_by="ranking"))
    except (KombuError, redis.RedisError, OSError) as exc:
        log.warning("could not acknowledge the revocation of order %s (%s); certificates' revocation "
                    "audit will send ranking.revoke again", order_id, exc, extra={"order_id": order_id})


# A reconciliation that has to rebuild 1,000,000-member boards takes a minute or two,
# beyond the platform's default task limits (still well within the visibility timeout).
@celery.task(name="ranking.reconcile", bind=True, soft_time_limit=1800, time_limit=1900)
def reconcile(self, payload: dict) -> dict:
    load("ranking.reconcile", payload)
    report = reconciliation.reconcile(unit_of_work, store.writer(), settings.now())
    log.info("ranking reconciliation done", extra={"repaired": report.repaired, "checked": report.checked,
                                                   "differing": len(report.differing),
                                                   "skipped": report.skipped})
    return asdict(report)
