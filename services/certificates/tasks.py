"""Celery tasks of the certificates service.

Worker: ``celery -A certificates.tasks worker -Q certificates``.
"""
from __future__ import annotations

import logging

from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_init, worker_process_init
from sqlalchemy.exc import InterfaceError, OperationalError

from diandian_common import config
from diandian_common.celery_app import make_celery
from diandian_common.contracts import load
from diandian_common.db import Database, service_database
from diandian_common.outbox import relay, try_relay

from . import fonts
from . import render as pdf_renderer
from .issuance import issue_certificate
from .models import OutboxMessage
from .storage import storage_from_env

log = logging.getLogger(__name__)

celery = make_celery("certificates")

# Unsent outbox rows (the broker was down right after a commit) are published by this
# periodic task where a beat scheduler runs (``celery -A certificates.tasks beat``).
OUTBOX_RELAY_SECONDS = config.env_float("CERTIFICATES_OUTBOX_RELAY_SECONDS", 5.0)
celery.conf.beat_schedule = {
    "relay-outbox": {"task": "certificates.relay_outbox", "schedule": OUTBOX_RELAY_SECONDS,
                     "args": [{"v": 1}], "options": {"expires": OUTBOX_RELAY_SECONDS}},
}

# Failures worth another try: the database or the storage briefly unavailable, or a
# render cut short by the soft time limit on an overloaded worker. A message that breaks
# its contract (contracts.InvalidMessage) or has another version is never retried.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, OSError, SoftTimeLimitExceeded)



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


def database() -> Database:
    return service_database("certificates")


@celery.task(name="certificates.render", bind=True, soft_time_limit=30, time_limit=45,
             autoretry_for=TRANSIENT_ERRORS, max_retries=6, retry_backoff=2, retry_backoff_max=300,
             retry_jitter=True)
def render(self, payload: dict) -> dict:
    """Issue the order's certificate (once) and announce it with ``orders.certificate_issued``."""
    facts = load("certificates.render", payload)
    outcome = issue_certificate(database(), storage_from_env(), facts)
    try_relay(database(), OutboxMessage, celery)
    return {"certificate_id": outcome.certificate_id, "created": outcome.created}


@celery.task(name="certificates.relay_outbox", soft_time_limit=30, time_limit=45)
def relay_outbox(payload: dict | None = None) -> int:
    """Publish outbox rows that were not sent right after their commit."""
    load("certificates.relay_outbox", payload)
    return relay(database(), OutboxMessage, celery)
