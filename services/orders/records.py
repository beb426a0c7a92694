"""Reading and locking rows, shared by the orders packages' service functions."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Order, Project


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def for_update(session: Session, query):
    """Row locks on PostgreSQL; SQLite transactions already hold the write lock."""
    if session.get_bind().dialect.name == "sqlite":
        return query
    return query.with_for_update()


def lock_project(session: Session, project_id: str) -> Project | None:
    return session.scalars(for_update(session, select(Project).where(Project.id == project_id))).first()


def lock_order(session: Session, order_id: str) -> Order | None:
    return session.scalars(for_update(session, select(Order).where(Order.id == order_id))).first()


def lock_name(session: Session, namespace: str, value: str) -> None:
    """Hold a lock on ``namespace:value`` until the transaction ends (a PostgreSQL advisory
    lock; SQLite transactions already hold the write lock), for what has no row to lock:
    e.g. a participant's unpaid orders across projects."""
    if session.get_bind().dialect.name == "sqlite":
        return
    digest = hashlib.sha256(f"{namespace}:{value}".encode()).digest()
    session.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest[:8], "big", signed=True))))
