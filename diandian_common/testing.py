"""Helpers for the services' own tests (imported by tests only)."""
from __future__ import annotations

import contextlib
import os
import secrets
import socket
from pathlib import Path
from typing import Iterator

from .migrate import upgrade

# The machine's PostgreSQL (trust auth). Tests only ever create and drop databases of
# their own on it, named diandian_test_*.
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def migrated_sqlite_url(service: str, directory: Path) -> str:
    """A fresh SQLite database for ``service`` at head, in ``directory``."""
    url = f"sqlite:///{directory / (service + '.db')}"
    upgrade(service, url)
    return url


def postgres_available() -> bool:
    try:
        import psycopg
        with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), connect_timeout=2):
            return True
    except Exception:
        return False


@contextlib.contextmanager
def temporary_postgres_database(service: str) -> Iterator[str]:
    """A new PostgreSQL database migrated to head for ``service``; dropped afterwards."""
    import psycopg
    name = f"diandian_test_{service}_{secrets.token_hex(4)}"
    admin = POSTGRES_ADMIN_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(service, url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
