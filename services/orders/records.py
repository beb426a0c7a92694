"""Reading and locking rows, shared by the orders packages' service functions."""
from __future__ import annotations

import secrets

from sqlalchemy import select
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
