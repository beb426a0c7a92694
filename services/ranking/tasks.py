"""Celery tasks of the ranking service (queue ``ranking``).

- ``ranking.record``   {v, order_id, participant_id, display_name, organization, scene,
                        quantity_kg, occurred_at, mask_name?}
- ``ranking.revoke``   {v, order_id}
- ``ranking.reconcile`` {v}  (periodic, see ``beat_schedule``)

All three are idempotent. Temporary failures (Redis or the database unreachable, a
rebuild holding the boards) are retried with backoff; the reconciliation repairs
whatever still slips through.
"""
from __future__ import annotations

import logging
from dataclasses import asdict

import redis
from sqlalchemy.exc import OperationalError

from diandian_common.celery_app import check_version, make_celery
from diandian_common.db import Database, service_database

from . import contributions, maintenance, settings, store

log = logging.getLogger(__name__)

celery = make_celery("ranking")
celery.conf.beat_schedule = {
    "ranking-reconcile": {
        "task": "ranking.reconcile",
        "schedule": settings.reconcile_seconds(),
        "args": [{"v": 1}],
        # A reconciliation that waited longer than one period is superseded by the next.
        "options": {"queue": "ranking", "expires": settings.reconcile_seconds()},
    },
}

TEMPORARY_ERRORS = (redis.RedisError, OperationalError, contributions.RebuildInProgress)
MAX_RETRIES = 200          # with the delays below: about 1 h 40 min of trying
UNKNOWN_ORDER_RETRIES = 20  # a revocation may overtake its record: wait ~10 min for it



def database() -> Database:
    return service_database("ranking")


def _retry_delay(retries: int) -> int:
    return min(30, 2 ** retries)


@celery.task(name="ranking.record", bind=True, max_retries=MAX_RETRIES)
def record(self, payload: dict) -> dict:
    check_version(payload)
    try:
        outcome = contributions.record(database(), store.writer(), payload, settings.now())
    except TEMPORARY_ERRORS as exc:
        raise self.retry(exc=exc, countdown=_retry_delay(self.request.retries))
    return asdict(outcome)


@celery.task(name="ranking.revoke", bind=True, max_retries=MAX_RETRIES)
def revoke(self, payload: dict) -> dict:
    check_version(payload)
    try:
        outcome = contributions.revoke(database(), store.writer(), payload, settings.now())
    except contributions.UnknownOrder as exc:
        if self.request.retries >= UNKNOWN_ORDER_RETRIES:
            raise
        raise self.retry(exc=exc, countdown=30)
    except TEMPORARY_ERRORS as exc:
        raise self.retry(exc=exc, countdown=_retry_delay(self.request.retries))
    return asdict(outcome)


# A reconciliation that has to rebuild 1,000,000-member boards takes a minute or two,
# beyond the platform's default task limits (still well within the visibility timeout).
@celery.task(name="ranking.reconcile", bind=True, soft_time_limit=1800, time_limit=1900)
def reconcile(self, payload: dict) -> dict:
    check_version(payload)
    report = maintenance.reconcile(database(), store.writer(), settings.now())
    log.info("ranking reconciliation done", extra={"repaired": report.repaired, "checked": report.checked,
                                                   "differing": len(report.differing),
                                                   "skipped": report.skipped})
    return asdict(report)
