"""Celery tasks of the certificates service.

Worker: ``celery -A certificates.tasks worker -Q certificates``; the Celery app and its beat
schedule are in wiring.py (``celery`` is re-exported here for the worker and beat).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import timedelta

import redis
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_init, worker_process_init
from kombu.exceptions import KombuError

from diandian_common import config, db
from diandian_common.celery_app import send
from diandian_common.contracts import build, load
from diandian_common.metrics import count_pipeline_resent, count_storage_unavailable

from . import fonts, service
from . import render as pdf_renderer
from .storage import StorageUnavailable, storage_from_env
from .wiring import celery, unit_of_work, wiring

__all__ = ["audit_revocations", "celery", "relay_outbox", "render", "revocation_recorded", "show_registry"]

log = logging.getLogger(__name__)

# Failures worth another try: the database or the storage briefly unavailable, or a
# render cut short by the soft time limit on an overloaded worker. A message that breaks
# its contract (contracts.InvalidMessage) or has another version is never retried, nor is
# a permanent database error (diandian_common.db).
TRANSIENT_ERRORS = (*db.TRANSIENT_ERRORS, OSError, SoftTimeLimitExceeded)


@worker_init.connect(weak=False)
def _make_font_subset(**_kwargs):
    """The main worker process makes (or finds) the CJK font subset before the pool forks:
    a child busy for seconds at start would be taken for hung (``worker_proc_alive_timeout``)."""
    fonts.common_subset_from_env()


@worker_process_init.connect(weak=False)
def _prepare_renderer(**_kwargs):
    """Each worker child builds its fonts and stylesheet before taking its first message
    (FontConfiguration holds Pango and fontconfig state, not to be shared across a fork)."""
    pdf_renderer.prepare()


@contextmanager
def storage_trouble_reported(task):
    """A storage that cannot take the file (found before rendering, or when writing) puts the
    task off: said at WARNING with the cause (ERROR on the last try, after which the order
    waits for orders' stuck-order check), counted in ``storage_unavailable_total``, and
    raised again for the task's retry with back-off. Celery's own retry line is only INFO."""
    try:
        yield
    except StorageUnavailable as exc:
        count_storage_unavailable("certificates", task.name)
        retries, limit = task.request.retries, task.max_retries
        last = limit is not None and retries >= limit
        log.log(logging.ERROR if last else logging.WARNING,
                "%s put off: %s (%s)", task.name, exc,
                "no tries left" if last else f"try {retries + 1} of {(limit or 0) + 1}; tried again later")
        raise


@celery.task(name="certificates.render", bind=True, soft_time_limit=30, time_limit=45,
             autoretry_for=TRANSIENT_ERRORS, max_retries=6, retry_backoff=2, retry_backoff_max=300,
             retry_jitter=True)
def render(self, payload: dict) -> dict:
    """Issue the order's certificate (once) and announce it with ``orders.certificate_issued``.
    Several units of work (see ``service.issue_certificate``), each relayed after its commit."""
    facts = load("certificates.render", payload)
    with storage_trouble_reported(self):
        outcome = service.issue_certificate(unit_of_work, storage_from_env(), facts)
    return {"certificate_id": outcome.certificate_id, "created": outcome.created}


@celery.task(name="certificates.show_registry", bind=True, soft_time_limit=30, time_limit=45,
             autoretry_for=TRANSIENT_ERRORS, max_retries=6, retry_backoff=2, retry_backoff_max=300,
             retry_jitter=True)
def show_registry(self, payload: dict) -> dict:
    """Show the registry cancellations covering the order on its certificate (kept for it
    if it is not issued yet) and render its PDF again. Several units of work (see
    ``service.show_registry``); a repeated or older message changes nothing."""
    message = load("certificates.show_registry", payload)
    with storage_trouble_reported(self):
        noted = service.show_registry(unit_of_work, storage_from_env(), message)
    acknowledge_registry(message.order_id, message.registry.anchored_kg)
    return {"order_id": message.order_id, "noted": noted}


def acknowledge_registry(order_id: str, anchored_kg: int) -> None:
    """Tell orders the notice is held and shown (``orders.registry_shown``), every time: its
    pipeline audit sends the notice again until it hears this. Sent directly, not through the
    outbox: a lost acknowledgement only brings one more copy, which changes nothing."""
    try:
        send(wiring.celery, "orders.registry_shown",
             build("orders.registry_shown", order_id=order_id, anchored_kg=anchored_kg))
    except (KombuError, redis.RedisError, OSError) as exc:
        log.warning("could not confirm the registry notice of order %s (%s); orders' pipeline audit "
                    "will send it again", order_id, exc, extra={"order_id": order_id})


@celery.task(name="certificates.revocation_recorded", bind=True, autoretry_for=db.TRANSIENT_ERRORS,
             max_retries=6, retry_backoff=2, retry_backoff_max=300, retry_jitter=True)
def revocation_recorded(self, payload: dict) -> bool:
    """Orders or ranking applied a revocation: the revocation audit stops sending it to them."""
    message = load("certificates.revocation_recorded", payload)
    with unit_of_work() as uow:
        return service.revocation_recorded(uow, message.order_id, message.recorded_by)


@celery.task(name="certificates.audit_revocations", soft_time_limit=60, time_limit=90,
             autoretry_for=db.TRANSIENT_ERRORS, max_retries=3, retry_backoff=2)
def audit_revocations(payload: dict | None = None) -> dict:
    """Send a revocation's messages again to orders or ranking where it was never confirmed."""
    load("certificates.audit_revocations", payload)
    grace = timedelta(seconds=config.pipeline_audit_seconds())
    with unit_of_work() as uow:
        report = service.audit_revocations(uow, grace)
    count_pipeline_resent("certificates", "certificates.audit_revocations", report.resent)
    counts = {"unacknowledged": report.unacknowledged, "resent": report.resent, "waiting": report.waiting}
    if report.unacknowledged:
        log.warning("revocation audit: %d revocations not confirmed by orders or ranking after %d s: "
                    "sent again for %d, %d wait for an earlier copy", report.unacknowledged,
                    grace.total_seconds(), report.resent, report.waiting, extra=counts)
    else:
        log.info("revocation audit: orders and ranking confirmed every revocation over %d s old",
                 grace.total_seconds(), extra=counts)
    return counts


@celery.task(name="certificates.relay_outbox", soft_time_limit=30, time_limit=45)
def relay_outbox(payload: dict | None = None) -> int:
    """Publish outbox rows that were not sent right after their commit."""
    load("certificates.relay_outbox", payload)
    return wiring.relay()
