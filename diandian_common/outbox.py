"""Transactional outbox: a state change and the messages it causes commit together.

A service adds an ``OutboxMessage`` row in the same transaction as its state change
(:func:`enqueue`); :func:`relay` later publishes unsent rows to Celery by task name and
marks them sent. A crash between publishing and marking re-publishes the row, so the
receivers are idempotent (at-least-once, SPEC §3).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import redis
from celery import Celery
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import JSON, DateTime, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .celery_app import MESSAGE_VERSION, queue_for, send
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
    session.add(model(task_name=task_name, queue=queue_for(task_name),
                      payload={"v": MESSAGE_VERSION, **payload}, attempts=0))


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
                send(celery, row.task_name, row.payload, retry=retry)
            except Exception as exc:
                log.warning("outbox relay could not publish %s #%s (%s); will retry",
                            row.task_name, row.id, exc)
                break
            row.sent_at = utcnow()
            sent += 1
    return sent


def broker_reachable(celery: Celery, timeout: float = 0.5) -> bool:
    """One quick PING without retries. Publishing to a Redis that is down takes seconds
    (the client retries its connection with backoff), too long for a request's fast path."""
    url = celery.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://")):
        return True
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                  retry=Retry(NoBackoff(), 0))
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


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
