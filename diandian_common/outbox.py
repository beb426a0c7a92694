"""Transactional outbox: a state change and the messages it causes commit together.

A service adds an ``OutboxMessage`` row in the same transaction as its state change
(:func:`enqueue`); :func:`relay` later publishes unsent rows to Celery by task name and
marks them sent. A crash between publishing and marking re-publishes the row, so the
receivers are idempotent (at-least-once, docs/contract.md "Delivery").

Every message is checked against its task's contract (:mod:`diandian_common.contracts`)
when it is enqueued, inside the state change's transaction: a task name without a
contract, or a payload that breaks it, fails that transaction rather than a consumer.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

import redis
from celery import Celery
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import JSON, DateTime, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .celery_app import owner_of, publish
from .contracts import check
from .db import Database

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class OutboxMixin:
    """Columns of a service's ``outbox`` table (mix into the service's Base)."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_name: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


def enqueue(session: Session, model, task_name: str, payload: dict) -> None:
    """Add ``task_name``'s message to the outbox (raises ``contracts.NoContract`` or
    ``contracts.InvalidMessage`` for a name or payload its contract refuses)."""
    # ``queue`` records the owner: its queue's name without CELERY_QUEUE_PREFIX, which is the
    # deployment's (the relay sends to the prefix of the moment, by task name).
    session.add(model(task_name=task_name, queue=owner_of(task_name),
                      payload=check(task_name, payload), attempts=0))
    session.info["outbox_enqueued"] = True


def enqueued(session: Session) -> bool:
    """Whether ``session`` added outbox messages (a relay after its commit has work to do)."""
    return bool(session.info.get("outbox_enqueued"))


def relay(database: Database, model, celery: Celery, limit: int = 200, retry: bool = True) -> int:
    """Publish up to ``limit`` unsent messages in order; returns how many were sent.

    ``retry=False`` fails fast when the broker is down (for a request's fast path).

    On PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED`` so several relays
    can run at once; on SQLite the transaction's write lock serialises them.
    """
    sent = 0
    with database.transaction() as session:
        query = select(model).where(model.sent_at.is_(None)).order_by(model.id).limit(limit)
        if not database.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        for row in session.scalars(query):
            row.attempts = (row.attempts or 0) + 1
            try:
                # Checked when enqueued: a row is never held back by a later check.
                publish(celery, row.task_name, row.payload, retry=retry)
            except Exception as exc:
                log.warning("outbox relay could not publish %s #%s (%s); will retry",
                            row.task_name, row.id, exc)
                break
            row.sent_at = utcnow()
            sent += 1
    return sent


_ping_clients: dict[tuple[str, float], redis.Redis] = {}
_ping_clients_lock = threading.Lock()


def _ping_client(url: str, timeout: float) -> redis.Redis:
    """One client per broker URL and timeout, kept for the process: a PING on its pooled
    connection is one round trip, where a new client per call would connect and identify
    itself (CLIENT SETINFO, reading the package metadata) every time. redis-py's pool
    drops connections inherited across a fork, so prefork children get their own."""
    with _ping_clients_lock:
        client = _ping_clients.get((url, timeout))
        if client is None:
            client = _ping_clients[(url, timeout)] = redis.Redis.from_url(
                url, socket_connect_timeout=timeout, socket_timeout=timeout,
                # One immediate retry, only for a broken connection (a pooled connection
                # after a Redis restart), never for a timeout; no client-info handshake.
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                driver_info=None)
        return client


def broker_reachable(celery: Celery, timeout: float = 0.5) -> bool:
    """One quick PING without backoff. Publishing to a Redis that is down takes seconds
    (the client retries its connection with backoff), too long for a request's fast path."""
    url = celery.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://")):
        return True
    client = _ping_client(url, timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:   # redis-py drops the failed connection; the next call reconnects
        return False


def try_relay(database: Database, model, celery: Celery) -> int:
    """Best-effort relay right after a commit, failing fast: a broker that is down is
    left to the periodic relay rather than holding up the caller."""
    if not broker_reachable(celery):
        log.warning("broker unreachable; the periodic relay will publish the outbox")
        return 0
    try:
        return relay(database, model, celery, retry=False)
    except Exception as exc:
        log.warning("outbox relay failed (%s); the periodic relay will retry", exc)
        return 0
