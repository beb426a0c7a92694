"""A service's ``/healthz`` (diandian_common/health.py) and its scheduler's heartbeat
(diandian_common/heartbeat.py), against the tests' own Redis."""
from __future__ import annotations

import logging
import time

import pytest
import redis

from diandian_common import health, heartbeat, logs
from diandian_common.celery_app import make_celery
from diandian_common.testing import free_port, migrated_sqlite_url
from diandian_common.uow import ServiceWiring
from diandian_common.web import create_service_app

SERVICE = "certificates"   # any service with migrations; the wiring below is the test's own


@pytest.fixture
def redis_client(redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def scheduled_app(tmp_path, redis_client, monkeypatch):
    """A service app whose wiring has a beat schedule, so its scheduler's heartbeat counts."""
    monkeypatch.setenv("SCHEDULER_HEARTBEAT_SECONDS", "10")
    monkeypatch.delenv("SCHEDULER_STALE_SECONDS", raising=False)
    return service_app(tmp_path, {"relay-outbox": {"task": f"{SERVICE}.relay_outbox", "schedule": 5.0}})


@pytest.fixture(autouse=True)
def logging_left_to_caplog(monkeypatch):
    """The apps made here do not set up the process's logging (which would take caplog's handler off)."""
    monkeypatch.setattr(logs, "_configured", True)


def service_app(tmp_path, beat_schedule: dict):
    celery = make_celery(SERVICE, broker_url="memory://")
    celery.conf.beat_schedule = beat_schedule
    wiring = ServiceWiring(SERVICE, celery=celery)
    app, _api = create_service_app(SERVICE, title="health probe",
                                   database_url=migrated_sqlite_url(SERVICE, tmp_path), wiring=wiring)
    return app


def get_health(app) -> tuple[int, dict]:
    response = app.test_client().get("/healthz")
    return response.status_code, response.get_json()


# --- the heartbeat ---------------------------------------------------------------------------

def test_a_heartbeat_is_stale_after_the_threshold_and_names_its_scheduler():
    fresh = heartbeat.Heartbeat("orders-beat", last_beat=100.0, now=110.0, stale_after=30)
    assert (fresh.age, fresh.stale, fresh.problem()) == (10.0, False, None)
    stale = heartbeat.Heartbeat("orders-beat", last_beat=100.0, now=142.0, stale_after=30)
    assert stale.stale and stale.problem() == \
        "orders-beat's last heartbeat is 42 s old (stale after SCHEDULER_STALE_SECONDS=30)"
    never = heartbeat.Heartbeat("orders-beat", last_beat=None, now=142.0, stale_after=30)
    assert never.stale and never.problem() == "orders-beat has never written a heartbeat"


def test_stale_means_three_heartbeat_periods_unless_set(monkeypatch):
    from diandian_common import config

    monkeypatch.setenv("SCHEDULER_HEARTBEAT_SECONDS", "4")
    monkeypatch.delenv("SCHEDULER_STALE_SECONDS", raising=False)
    assert config.scheduler_stale_seconds() == 12
    monkeypatch.setenv("SCHEDULER_STALE_SECONDS", "7.5")
    assert config.scheduler_stale_seconds() == 7.5
    monkeypatch.setenv("SCHEDULER_HEARTBEAT_SECONDS", "0")
    with pytest.raises(ValueError, match="SCHEDULER_HEARTBEAT_SECONDS"):
        config.scheduler_heartbeat_seconds()


def test_every_service_scheduler_is_the_heartbeat_scheduler():
    assert make_celery("orders").conf.beat_scheduler == "diandian_common.heartbeat:HeartbeatScheduler"


def heartbeat_scheduler(tmp_path, entries: dict | None = None) -> heartbeat.HeartbeatScheduler:
    celery = make_celery(SERVICE, broker_url="memory://")
    celery.conf.beat_schedule = entries or {}
    return heartbeat.HeartbeatScheduler(app=celery, schedule_filename=str(tmp_path / "beat-schedule"))


def test_the_scheduler_writes_its_heartbeat_from_its_loop(tmp_path, redis_client, monkeypatch):
    monkeypatch.setenv("SCHEDULER_HEARTBEAT_SECONDS", "2")
    # Its one entry every five minutes: it still wakes every heartbeat period.
    slow = {"slow": {"task": f"{SERVICE}.relay_outbox", "schedule": 300.0}}
    scheduler = heartbeat_scheduler(tmp_path, slow)
    try:
        assert scheduler.max_interval == 2
        before = time.time()
        assert scheduler.tick() <= 2
        written = float(redis_client.get(heartbeat.heartbeat_key(SERVICE)))
        assert before <= written <= time.time()
        assert heartbeat.heartbeat_key(SERVICE) == "diandian:certificates:beat:heartbeat"

        # Woken again at once (an entry was due): not written again within half a period.
        redis_client.set(heartbeat.heartbeat_key(SERVICE), "1.0")
        scheduler.tick()
        assert redis_client.get(heartbeat.heartbeat_key(SERVICE)) == b"1.0"
        scheduler._last_attempt -= 1.0   # half a period later
        scheduler.tick()
        assert float(redis_client.get(heartbeat.heartbeat_key(SERVICE))) >= before
    finally:
        scheduler.close()


def test_a_scheduler_without_redis_carries_on_and_says_so_once(tmp_path, redis_url, monkeypatch, caplog):
    monkeypatch.setenv("SCHEDULER_HEARTBEAT_SECONDS", "2")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    scheduler = heartbeat_scheduler(tmp_path)
    try:
        with caplog.at_level(logging.INFO, logger=heartbeat.__name__):
            for _ in range(3):
                scheduler._last_attempt = None   # a write is due on every tick
                scheduler.tick()
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1
            assert "certificates-beat: heartbeat not written (ConnectionError" in warnings[0].getMessage()

            monkeypatch.setenv("REDIS_URL", redis_url)   # Redis is back (a new client is made)
            scheduler._heartbeat_client = None
            scheduler._last_attempt = None
            scheduler.tick()
        assert caplog.records[-1].getMessage() == "certificates-beat: heartbeat written again"
        client = redis.Redis.from_url(redis_url)
        assert client.get(heartbeat.heartbeat_key(SERVICE)) is not None
        client.close()
    finally:
        scheduler.close()


# --- /healthz ------------------------------------------------------------------------------

def test_a_fresh_heartbeat_is_healthy_and_shown(scheduled_app, redis_client):
    heartbeat.write_heartbeat(redis_client, SERVICE, now=time.time() - 3)
    status, body = get_health(scheduled_app)
    assert status == 200 and body["status"] == "ok", body
    assert body["checks"] == {"database": "ok", "redis": "ok", "scheduler": "ok"}
    section = body["scheduler"]
    assert section["name"] == "certificates-beat" and section["stale_after_seconds"] == 30
    assert 3 <= section["age_seconds"] < 10 and section["last_heartbeat"].endswith("+00:00")


def test_a_stale_heartbeat_is_named_and_logged_once_until_it_recovers(scheduled_app, redis_client, caplog):
    heartbeat.write_heartbeat(redis_client, SERVICE, now=time.time() - 42)
    with caplog.at_level(logging.INFO, logger=health.__name__):
        for _ in range(2):
            status, body = get_health(scheduled_app)
            # Still ready (the API serves), but degraded: the gateway answers 503 for it.
            assert status == 200 and body["status"] == "degraded", body
            assert body["checks"]["scheduler"].startswith("error: certificates-beat's last heartbeat is 4")
            assert "stale after SCHEDULER_STALE_SECONDS=30" in body["checks"]["scheduler"]
        heartbeat.write_heartbeat(redis_client, SERVICE)
        status, body = get_health(scheduled_app)
        assert status == 200 and body["status"] == "ok"
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == health.__name__]
    assert [level for level, _ in lines] == ["WARNING", "INFO"], lines
    assert "certificates health: scheduler failing: error: certificates-beat's last heartbeat" in lines[0][1]
    assert lines[1][1] == "certificates health: scheduler ok again"


def test_a_scheduler_that_never_beat_is_named(scheduled_app, redis_client):
    status, body = get_health(scheduled_app)
    assert status == 200 and body["status"] == "degraded"
    assert body["checks"]["scheduler"] == "error: certificates-beat has never written a heartbeat"
    assert body["scheduler"]["last_heartbeat"] is None


def test_redis_down_is_an_error_and_the_heartbeat_is_not_asked_for(scheduled_app, monkeypatch):
    scheduled_app.config["REDIS_URL"] = down = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("REDIS_URL", down)
    status, body = get_health(scheduled_app)
    assert status == 503 and body["status"] == "error"
    assert body["checks"]["redis"] == "error: ConnectionError"
    assert body["checks"]["scheduler"] == "unknown: Redis does not answer"


def test_a_service_without_a_beat_schedule_has_no_scheduler_check(tmp_path, redis_client):
    status, body = get_health(service_app(tmp_path, {}))
    assert status == 200 and body["checks"] == {"database": "ok", "redis": "ok"} and "scheduler" not in body


def test_a_services_own_check_is_reported_with_its_cause(tmp_path, redis_client):
    app = service_app(tmp_path, {})
    causes = {"storage": None}

    def storage():
        if causes["storage"]:
            raise OSError(causes["storage"])

    health.add_check(app, "storage", storage)
    assert get_health(app)[1]["checks"]["storage"] == "ok"
    causes["storage"] = "certificate storage /srv/pdfs cannot take a file: PermissionError: Permission denied"
    status, body = get_health(app)
    assert status == 200 and body["status"] == "degraded"
    assert body["checks"]["storage"] == f"error: OSError: {causes['storage']}"
    with pytest.raises(ValueError):
        health.add_check(app, "database", storage)
