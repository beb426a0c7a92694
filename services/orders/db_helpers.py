"""Small helpers shared by the orders service's database modules."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone

from sqlalchemy.orm import Session


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def for_update(session: Session, query):
    """Row locks on PostgreSQL; SQLite transactions already hold the write lock."""
    if session.get_bind().dialect.name == "sqlite":
        return query
    return query.with_for_update()


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment else None
