"""SQLAlchemy engine and transactions, the same for every service's API and worker.

SQLite (the local default) runs in WAL mode with a busy timeout, and every transaction
starts with ``BEGIN IMMEDIATE``: the API and the worker of a service write the same
file, and taking the write lock up front turns lock-upgrade deadlocks (which SQLite
reports at once, ignoring the busy timeout) into ordinary waits.

A SQLite database file is created 0600 in a 0700 directory before SQLite opens it, so its
journal files (SQLite gives them the database's permissions) are private too: they hold
guests' names and orders.

Database faults are sorted once, here, where they arise (:func:`classify`, the engine's
``handle_error`` hook): a fault that can heal — a connection lost or refused, a lock or
statement timeout, a deadlock or serialization failure — is raised as
:class:`DatabaseUnavailable` (an ``OperationalError`` still, so nothing that catches those
changes); anything else (a programming error, bad data, a broken constraint) keeps its own
class and is permanent: running it again gives the same error. The entrypoints act on the
difference (diandian_common.uow): a request re-runs once or answers 503, a task retries
later or fails its message at once.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, ExceptionContext, make_url
from sqlalchemy.orm import Session, sessionmaker

from . import config

SQLITE_BUSY_TIMEOUT_MS = 30_000


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, or None (in memory, or a ``file:`` URI SQLite resolves)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_private_file(path: Path) -> None:
    """``path`` created 0600 (a missing directory 0700) unless it exists; an existing one of
    this user is made 0600."""
    config.private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, config.PRIVATE_FILE_MODE))
    except FileExistsError:
        config.make_private(path)


# --- transient and permanent faults -----------------------------------------------------------

# PostgreSQL SQLSTATEs (appendix A of its manual) of faults that heal. Class 08 (connection
# exception) is lost connections too.
LOST_CONNECTION_STATES = frozenset({
    "57P01",  # admin_shutdown: pg_terminate_backend, a fast shutdown, a failover
    "57P02",  # crash_shutdown
    "57P05",  # idle_session_timeout
    "25P03",  # idle_in_transaction_session_timeout
})
# A transaction that lost a race: the same transaction run again at once succeeds.
LOST_RACE_STATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
# Faults that heal with time, not at once: a retry waits (a task's backoff, a client's Retry-After).
WAIT_STATES = frozenset({
    "55P03",  # lock_not_available (lock_timeout)
    "57014",  # query_canceled (statement_timeout)
    "57P03",  # cannot_connect_now: the server is starting or shutting down
    "53300",  # too_many_connections
    "53200",  # out_of_memory
})
# SQLite's result codes of a lock it waited for in vain (the busy timeout passed).
SQLITE_BUSY, SQLITE_LOCKED = 5, 6


class DatabaseUnavailable(sa_exc.OperationalError):
    """A database fault that can heal: the same work may succeed later, unchanged.

    ``rerun`` says whether it may succeed *at once*: the transaction lost its connection
    (a fresh one is taken next time) or lost a deadlock or serialization race. Otherwise
    (a lock timeout, a server refusing connections) a retry should wait.
    Raised by every engine of :func:`make_engine` instead of the driver's error, with the
    same statement, driver error (``orig``) and ``connection_invalidated``."""

    rerun: bool = False

    @classmethod
    def of(cls, error: sa_exc.DBAPIError, rerun: bool) -> DatabaseUnavailable:
        fault = cls(error.statement, error.params, error.orig, hide_parameters=error.hide_parameters,
                    connection_invalidated=error.connection_invalidated, ismulti=error.ismulti)
        fault.rerun = rerun
        return fault


# What may heal, for ``except`` and Celery's ``autoretry_for``: the faults above, and a pool
# whose connections were all busy for its whole timeout.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (DatabaseUnavailable, sa_exc.TimeoutError)


def classify(error: sa_exc.DBAPIError) -> str | None:
    """``"rerun"`` (heals at once: a lost connection or race), ``"wait"`` (heals with time) or
    None (permanent) for a database error as SQLAlchemy raised it."""
    if error.connection_invalidated:
        return "rerun"
    orig = error.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state:
        if state.startswith("08") or state in LOST_CONNECTION_STATES or state in LOST_RACE_STATES:
            return "rerun"
        return "wait" if state in WAIT_STATES else None
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None:
            return "wait" if code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED) else None
        return "wait" if "locked" in str(orig) else None
    # No SQLSTATE from a server: the client library's own OperationalError is about the
    # connection (refused, reset, timed out) — PostgreSQL's errors all carry one.
    if isinstance(error, sa_exc.OperationalError) and type(orig).__module__.startswith("psycopg"):
        return "wait"
    return None


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_ERRORS)


def is_permanent(error: BaseException) -> bool:
    """A database error that running the same work again would give again (a bug, bad data)."""
    return isinstance(error, sa_exc.DBAPIError) and not is_transient(error)


def _raise_transient_faults(context: ExceptionContext):
    """The engines' ``handle_error`` hook: a fault that heals becomes :class:`DatabaseUnavailable`
    (returned, so SQLAlchemy raises it from the driver's error after its own clean-up)."""
    error = context.sqlalchemy_exception
    if context.is_pre_ping or not isinstance(error, sa_exc.DBAPIError) or isinstance(error, DatabaseUnavailable):
        return None  # a dead pooled connection found by the pre-ping is replaced silently
    kind = classify(error)
    if kind is None:
        return None
    return DatabaseUnavailable.of(error, rerun=kind == "rerun")


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None:
            create_private_file(path)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Let SQLAlchemy emit BEGIN itself (see _sqlite_begin).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    else:
        # A connection the server closed while it sat in the pool (a restart, a failover,
        # pg_terminate_backend) is found by the ping at checkout and replaced, unseen; one
        # lost in use invalidates the whole pool, so the next checkout connects afresh.
        kwargs.setdefault("pool_pre_ping", True)
        if "poolclass" not in kwargs:
            kwargs.setdefault("pool_size", 5)
            kwargs.setdefault("max_overflow", 10)
        engine = create_engine(url, **kwargs)
    event.listen(engine, "handle_error", _raise_transient_faults)
    return engine


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        session = self.sessions()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            conn.rollback()

    def dispose(self) -> None:
        self.engine.dispose()


_service_databases: dict[str, Database] = {}
_service_databases_lock = threading.Lock()


def service_database(service: str, url: str | None = None) -> Database:
    """The process's :class:`Database` of ``service`` (at ``url``, else the configured one).

    Created on first use, so importing a tasks module opens nothing and each prefork child
    gets its own pool after the fork; created again when the URL changes (as it does
    between tests).
    """
    url = url or config.database_url(service)
    with _service_databases_lock:
        database = _service_databases.get(service)
        if database is None or database.url != url:
            if database is not None:
                database.dispose()
            database = _service_databases[service] = Database(url)
        return database
