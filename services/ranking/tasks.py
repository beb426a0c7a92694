"""Celery tasks of the ranking service (queue ``ranking``): ``ranking.record``,
``ranking.revoke`` and the periodic ``ranking.reconcile`` (see ``beat_schedule``); their
payloads are loaded through ``diandian_common.contracts`` (docs/contract.md, "Messages").

All three are idempotent. A payload that breaks its contract fails at once, untouched. Temporary failures (Redis or the database unreachable, a
rebuild holding the boards) are retried with backoff; the reconciliation repairs
whatever still slips through.
"""
from __future__ import annotations

import logging
from dataclasses import asdict

import redis
from sqlalchemy.exc import OperationalError

from diandian_common.celery_app import make_celery
from diandian_common.contracts import load
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
    message = load("ranking.record", payload)
    try:
        outcome = contributions.record(database(), store.writer(), message, settings.now())
    except TEMPORARY_ERRORS as exc:
        raise self.retry(exc=exc, countdown=_retry_delay(self.request.retries))
    return asdict(outcome)


@celery.task(name="ranking.revoke", bind=True, max_retries=MAX_RETRIES)
def revoke(self, payload: dict) -> dict:
    order_id = load("ranking.revoke", payload).order_id
    try:
        outcome = contributions.revoke(database(), store.writer(), order_id, settings.now())
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
    load("ranking.reconcile", payload)
    report = maintenance.reconcile(database(), store.writer(), settings.now())
    log.info("ranking reconciliation done", extra={"repaired": report.repaired, "checked": report.checked,
                                                   "differing": len(report.differing),
                                                   "skipped": report.skipped})
    return asdict(report)
