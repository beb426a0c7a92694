"""SQLAlchemy engine and transactions, the same for every service's API and worker.

SQLite (the local default) runs in WAL mode with a busy timeout, and every transaction
starts with ``BEGIN IMMEDIATE``: the API and the worker of a service write the same
file, and taking the write lock up front turns lock-upgrade deadlocks (which SQLite
reports at once, ignoring the busy timeout) into ordinary waits.

A SQLite database file is created 0600 in a 0700 directory before SQLite opens it, so its
journal files (SQLite gives them the database's permissions) are private too: they hold
guests' names and orders.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
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

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


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
