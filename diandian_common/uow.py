"""The unit of work: one transaction, opened by an entrypoint, relayed after commit.

The one transaction rule (CONTRIBUTING.md): entrypoints — routes, Celery tasks, CLI
commands — open a :class:`UnitOfWork`; service functions take it and work in
``uow.session``; they never commit, open another transaction or publish. When the block
ends without an error the unit of work commits, then publishes the outbox rows the
transaction added (best effort and failing fast: a broker that is down is left to the
periodic relay), so no caller relays by hand. An error rolls everything back, outbox rows
included: a message goes out if and only if its state change was committed.

Calls to outside systems (payment providers, webhook endpoints) never happen inside a
unit of work: claim in one, call outside, record in another.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from . import config
from .db import Database, service_database
from .outbox import enqueued, relay, try_relay


class UnitOfWork:
    def __init__(self, database: Database, outbox_model: type | None = None, celery: Celery | None = None):
        self.database = database
        self.outbox_model = outbox_model
        self.celery = celery
        self.session: Session | None = None
        self.relayed = 0

    def __enter__(self) -> "UnitOfWork":
        self.session = self.database.sessions()
        self.session.begin()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        session, added_messages = self.session, False
        try:
            if exc_type is None:
                session.commit()
                added_messages = enqueued(session)
            else:
                session.rollback()
        finally:
            session.close()
            self.session = None
        if added_messages and self.outbox_model is not None and self.celery is not None:
            self.relayed = try_relay(self.database, self.outbox_model, self.celery)
        return False


@dataclass
class ServiceWiring:
    """How a service's routes, tasks and CLI reach its database and broker: the one wiring
    point, built once per service (``<service>/wiring.py``) and used by ``create_app`` and
    the Celery worker alike.

    The database is the one ``create_app(database_url=...)`` bound (``bind``) or else the
    process's database for ``<SERVICE>_DATABASE_URL``/``DATABASE_URL``, made on first use
    after a worker forks.
    """

    service: str
    outbox_model: type | None = None
    celery: Celery | None = None
    bound_url: str | None = None

    def bind(self, database_url: str | None) -> None:
        """Use ``database_url`` from now on in this process (tests and ``create_app``)."""
        self.bound_url = database_url

    def database(self) -> Database:
        url = self.bound_url or config.database_url(self.service)
        return service_database(self.service, url)

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.database(), self.outbox_model, self.celery)

    def relay(self, **options: Any) -> int:
        """Publish unsent outbox rows (the periodic relay task)."""
        return relay(self.database(), self.outbox_model, self.celery, **options)
