"""Fixtures of the ranking tests: a private redis-server, a migrated SQLite database,
and a fixed clock (noon today in the ranking time zone, so every period board is live
in Redis' real time too)."""
from __future__ import annotations

import shutil
import subprocess
import time
from datetime import datetime, time as clock_time, timezone
from zoneinfo import ZoneInfo

import pytest
import redis

from diandian_common.testing import free_port, migrated_sqlite_url

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="session")
def redis_server():
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server); "
                    "the Redis-backed ranking tests need a real Redis")
    port = free_port()
    process = subprocess.Popen([executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
    client.close()
    yield url
    process.terminate()
    process.wait(timeout=10)


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
    return database_url


@pytest.fixture
def redis_client(redis_server, monkeypatch, env):
    monkeypatch.setenv("RANKING_REDIS_URL", redis_server)
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def database(env):
    from ranking import tasks
    return tasks.database()
