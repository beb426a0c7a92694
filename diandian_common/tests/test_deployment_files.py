"""The databases and VAR_DIR are private to the platform's user: SQLite files (and their
journals) 0600, the directories made for them 0700, whatever the umask."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from diandian_common import config
from diandian_common.db import Database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask():
    """umask 000: nothing but the code itself keeps the files private."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_var_dir_is_created_0700(monkeypatch, tmp_path, permissive_umask):
    target = tmp_path / "deploy" / "var"
    monkeypatch.setenv("VAR_DIR", str(target))
    assert config.var_dir() == target
    assert mode(target) == 0o700 and mode(target.parent) == 0o700


def test_an_existing_directory_is_left_alone(monkeypatch, tmp_path):
    """/tmp or a mounted volume may be shared on purpose: the platform does not chmod it."""
    tmp_path.chmod(0o755)
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    config.var_dir()
    assert mode(tmp_path) == 0o755


def test_a_sqlite_database_and_its_journals_are_0600(monkeypatch, tmp_path, permissive_umask):
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    url = config.database_url("orders")       # sqlite:///<VAR_DIR>/orders.db
    database = Database(url)
    try:
        with database.transaction() as session:
            session.connection().exec_driver_sql("CREATE TABLE guests (name TEXT)")
            session.connection().exec_driver_sql("INSERT INTO guests VALUES ('韩梅梅')")
        files = sorted((tmp_path / "var").iterdir())
        names = {path.name for path in files}
        assert {"orders.db", "orders.db-wal", "orders.db-shm"} <= names   # WAL mode, open
        assert {path.name: mode(path) for path in files} == dict.fromkeys(names, 0o600)
        assert mode(tmp_path / "var") == 0o700
    finally:
        database.dispose()


def test_a_database_in_a_missing_directory_gets_a_private_one(tmp_path, permissive_umask):
    path = tmp_path / "elsewhere" / "gateway.db"
    database = Database(f"sqlite:///{path}")
    try:
        database.ping()
    finally:
        database.dispose()
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_an_existing_database_is_made_private(tmp_path):
    """One created by an earlier version, readable by everyone."""
    path = tmp_path / "ranking.db"
    path.touch()
    path.chmod(0o644)
    database = Database(f"sqlite:///{path}")
    try:
        database.ping()
    finally:
        database.dispose()
    assert mode(path) == 0o600


def test_in_memory_databases_create_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite://", "sqlite:///:memory:"):
        database = Database(url)
        database.ping()
        database.dispose()
    assert list(tmp_path.iterdir()) == []
