"""The gateway's ``/healthz`` (gateway/health.py): a degraded service (stale scheduler, storage
that cannot take a file) is a failure named in ``services``; every scheduler's heartbeat is
listed under ``schedulers``."""
from __future__ import annotations

import requests

from gateway import health

FRESH = {"name": "orders-beat", "last_heartbeat": "2026-12-05T22:00:00+00:00", "age_seconds": 2.5,
         "stale_after_seconds": 30.0}
STALE = "error: ranking-beat's last heartbeat is 42 s old (stale after SCHEDULER_STALE_SECONDS=30)"
STORAGE = "error: StorageUnavailable: certificate storage /srv/pdfs cannot take a file: PermissionError"


class Answer:
    def __init__(self, status_code: int, body):
        self.status_code, self.body = status_code, body

    def json(self):
        if self.body is None:
            raise ValueError("not JSON")
        return self.body


class Services:
    """A requests session answering each service's /healthz from a table (None: unreachable)."""

    def __init__(self, answers: dict[str, Answer | None]):
        self.answers = answers

    def get(self, url, timeout):
        name = url.split("//")[1].split("/")[0]
        answer = self.answers[name]
        if answer is None:
            raise requests.ConnectionError("refused")
        return answer


def service_body(status: str, checks: dict, scheduler: dict | None = None) -> dict:
    body = {"status": status, "service": "x", "checks": {"database": "ok", "redis": "ok", **checks}}
    if scheduler is not None:
        body["scheduler"] = scheduler
    return body


def test_a_service_status_from_its_answer():
    assert health.service_status(200, service_body("ok", {})) == ("ok", None)
    assert health.service_status(200, service_body("degraded", {"storage": STORAGE})) == \
        (f"degraded (storage: {STORAGE})", None)
    assert health.service_status(503, service_body("error", {"database": "error: OperationalError"})) == \
        ("error 503 (database: error: OperationalError)", None)
    assert health.service_status(502, None) == ("error 502", None)
    status, scheduler = health.service_status(200, service_body("ok", {"scheduler": "ok"}, FRESH))
    assert status == "ok" and scheduler == {**FRESH, "status": "ok"}


def test_a_stale_scheduler_or_a_broken_store_is_503_naming_it(redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    stale = {**FRESH, "name": "ranking-beat", "age_seconds": 42.0}
    session = Services({
        "calculator": Answer(200, service_body("ok", {})),
        "orders": Answer(200, service_body("ok", {"scheduler": "ok"}, FRESH)),
        "certificates": Answer(200, service_body("degraded", {"storage": STORAGE}, None)),
        "ranking": Answer(200, service_body("degraded", {"scheduler": STALE}, stale)),
    })
    ok, body = health.check_all(session, {name: f"http://{name}" for name in session.answers})
    assert not ok and body["status"] == "error"
    assert body["services"] == {"calculator": "ok", "orders": "ok",
                                "certificates": f"degraded (storage: {STORAGE})",
                                "ranking": f"degraded (scheduler: {STALE})", "redis": "ok"}
    assert body["schedulers"] == {
        "orders-beat": {key: value for key, value in {**FRESH, "status": "ok"}.items() if key != "name"},
        "ranking-beat": {"last_heartbeat": FRESH["last_heartbeat"], "age_seconds": 42.0,
                         "stale_after_seconds": 30.0, "status": STALE}}


def test_every_part_ok_is_200_ok(redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    session = Services({"orders": Answer(200, service_body("ok", {"scheduler": "ok"}, FRESH)),
                        "calculator": Answer(200, service_body("ok", {}))})
    ok, body = health.check_all(session, {name: f"http://{name}" for name in session.answers})
    assert ok and body["status"] == "ok"
    assert body["services"] == {"orders": "ok", "calculator": "ok", "redis": "ok"}
    assert list(body["schedulers"]) == ["orders-beat"]


def test_an_unreachable_service_has_no_scheduler_listed(redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    session = Services({"orders": None})
    ok, body = health.check_all(session, {"orders": "http://orders"})
    assert not ok and body["services"]["orders"] == "unreachable (ConnectionError)"
    assert body["schedulers"] == {}
