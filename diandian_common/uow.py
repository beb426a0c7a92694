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

Database faults are the entrypoint's to handle (diandian_common.db sorts them):

- A request (:func:`rerun_on_lost_connection`, around every view of a service's app) whose
  transaction lost its connection is run once more, whole, on a fresh connection: every unit
  of work it opens rolled back or committed idempotently (an order's Idempotency-Key, a
  payment confirmed twice changing nothing), so the second run answers as the first would
  have. Not once it has called an outside system (:func:`called_outside`): that call is not
  the server's to repeat. A fault that outlives the re-run, or heals only with time, is 503
  ``database_unavailable`` with ``Retry-After`` (diandian_common.errors).
- A task retries only what can heal (``autoretry_for=db.TRANSIENT_ERRORS``). A permanent
  error — a programming error, bad data — fails its message at once, logged at ERROR with
  the task, the message id and the cause, and counted (``database_errors_total{entrypoint=
  "task", outcome="failed"}``, docs/operations.md).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from celery import Celery
from celery.signals import task_failure, task_retry
from sqlalchemy.orm import Session

from . import config
from .db import TRANSIENT_ERRORS, Database, is_permanent, is_transient, service_database
from .metrics import count_database_error
from .outbox import enqueued, relay, try_relay

log = logging.getLogger(__name__)
T = TypeVar("T")


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


# --- database faults at the entrypoints -------------------------------------------------------

# What the running request has called outside (a payment provider...): a re-run would call it again.
_called_outside: ContextVar[str | None] = ContextVar("called_outside", default=None)


def called_outside(what: str) -> None:
    """Say that the running request is calling an outside system (claim → call → record):
    from here on a lost connection does not re-run it, which would make the call again; the
    request answers 503 and its client sends it again if it wants. Outside a request
    (a task, the CLI), nothing."""
    _called_outside.set(what)


def rerun_on_lost_connection(run: Callable[[], T], service: str) -> T:
    """``run()`` — a request's whole work — and, when a transaction of it lost its connection
    (or a deadlock), ``run()`` once more: the pool was invalidated, so it runs on a fresh
    connection. A fault that heals only with time, a second fault, or one after
    :func:`called_outside` is raised for the error handler's 503."""
    token = _called_outside.set(None)
    try:
        try:
            return run()
        except TRANSIENT_ERRORS as fault:
            outside = _called_outside.get()
            if not getattr(fault, "rerun", False) or outside is not None:
                if outside is not None:
                    log.warning("database fault after calling %s: the request is not run again", outside)
                count_database_error(service, "request", "unavailable")
                raise
            log.warning("%s; running the request again on a fresh connection", fault.orig)
            count_database_error(service, "request", "rerun")
        try:
            return run()
        except TRANSIENT_ERRORS:
            count_database_error(service, "request", "unavailable")
            raise
    finally:
        _called_outside.reset(token)


def _task_service(task) -> str:
    return (getattr(task, "name", None) or "unknown").partition(".")[0]


@task_failure.connect(weak=False)
def _permanent_error_fails_the_message(sender=None, task_id=None, exception=None, **_):
    """A permanent database error failed a task: say so once, clearly (Celery's own line
    names only the exception), and count it for the alert."""
    if not is_permanent(exception):
        return
    orig = getattr(exception, "orig", None) or exception
    cause = (str(orig).strip().splitlines() or [""])[0][:300]   # the driver's first line, not its HINT
    log.error("task %s[%s] failed at once, not retried: a permanent database error, %s: %s "
              "(a bug or a message carrying bad data; sending it again would fail the same way)",
              getattr(sender, "name", sender), task_id, type(orig).__name__, cause)
    count_database_error(_task_service(sender), "task", "failed")


@task_retry.connect(weak=False)
def _transient_error_retried(sender=None, reason=None, **_):
    if is_transient(getattr(reason, "exc", reason)):  # reason: Celery's Retry, holding the error
        count_database_error(_task_service(sender), "task", "retried")
