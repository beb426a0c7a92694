"""Helpers for the services' own tests (imported by tests only)."""
from __future__ import annotations

import socket
from pathlib import Path

from .migrate import upgrade


def migrated_sqlite_url(service: str, directory: Path) -> str:
    """A fresh SQLite database for ``service`` at head, in ``directory``."""
    url = f"sqlite:///{directory / (service + '.db')}"
    upgrade(service, url)
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
