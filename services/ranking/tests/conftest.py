"""Fixtures of the ranking tests: a migrated SQLite database, the ranking wiring bound to it
(``wiring.bind``, as ``create_app`` binds it), the session's private redis-server emptied
for each test (the ``redis_server`` fixture of diandian_common.testing), and a fixed clock
(noon today in the ranking time zone, so every period board is live in Redis' real time
too)."""
from __future__ import annotations

from datetime import datetime, timezone
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import pytest
import redis

from diandian_common.testing import migrated_sqlite_url
from ranking.wiring import wiring

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def now(monkeypatch):
    noon = datetime.combine(datetime.now(TZ).date(), clock_time(12), tzinfo=TZ).astimezone(timezone.utc)
    monkeypatch.setattr("ranking.settings.now", lambda: noon)
    return noon


@pytest.fixture
def env(monkeypatch, tmp_path, now):
    monkeypatch.setenv("RANKING_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("RANKING_PERIOD_GRACE_DAYS", "7")
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    database_url = migrated_sqlite_url("ranking", tmp_path)
    monkeypatch.setenv("RANKING_DATABASE_URL", database_url)
    wiring.bind(database_url)   # tasks and commands run on this test's database, as create_app's would
    yield database_url
    wiring.bind(None)


@pytest.fixture
def redis_client(redis_server, monkeypatch, env):
    monkeypatch.setenv("RANKING_REDIS_URL", redis_server)
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def unit_of_work(env):
    """The wiring's unit-of-work factory, on this test's database."""
    return wiring.unit_of_work
