"""Fixtures of the calculator's tests: a migrated SQLite database per test, the app, and a
recorder in place of the Celery broker (at the one wiring point, calculator/wiring.py)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from diandian_common.testing import free_port, migrated_sqlite_url

OPERATOR_KEY = "test-operator-key"
BASE_URL = "https://diandian.example"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUBLIC_BASE_URL", BASE_URL)
    monkeypatch.setenv("OPERATOR_API_KEY", OPERATOR_KEY)
    monkeypatch.delenv("OPERATOR_API_KEYS", raising=False)
    monkeypatch.delenv("CALCULATOR_FACTOR_SET", raising=False)
    # Nothing listens there: a real publish would fail, which the API must survive.
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    return tmp_path


@pytest.fixture
def database_url(env):
    return migrated_sqlite_url("calculator", env)


class RecordingBroker:
    """Stands in for the Celery app at the wiring point: keeps what would be sent. Like the
    calculator's Celery app it has no beat schedule, which the app's health check reads."""

    def __init__(self):
        self.messages: list[tuple[str, dict]] = []
        self.conf = SimpleNamespace(beat_schedule={})

    def send_task(self, name, args=(), **_options):
        self.messages.append((name, args[0]))


@pytest.fixture
def sent(monkeypatch):
    """Messages the API sends, by task name (instead of publishing them)."""
    from calculator.wiring import wiring

    broker = RecordingBroker()
    monkeypatch.setattr(wiring, "celery", broker)
    return broker.messages


@pytest.fixture
def offline_celery(env):
    """The calculator's Celery app configured for a broker nobody listens on, failing at
    once instead of retrying the connection and the publish (some seconds each)."""
    from diandian_common.celery_app import make_celery

    return make_celery("calculator", broker_url=f"redis://127.0.0.1:{free_port()}/0",
                       broker_transport_options={"max_retries": 0}, task_publish_retry=False)


@pytest.fixture
def app(database_url, sent):
    from calculator.app import create_app

    application = create_app(database_url=database_url)
    application.config["TESTING"] = True
    yield application
    application.extensions["db"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def operator():
    return {"X-API-Key": OPERATOR_KEY}


@pytest.fixture
def make_scene(client, operator):
    def make(slug="cdcn-forum-2021", **overrides):
        body = {"slug": slug, "name": "首届中国数字碳中和高峰论坛",
                "name_en": "First China Digital Carbon Neutrality Forum", "type": "conference",
                "location": "成都 Chengdu", "starts_on": "2021-09-07", **overrides}
        response = client.post("/api/v1/scenes", json=body, headers=operator)
        assert response.status_code == 201, response.get_json()
        return response.get_json()
    return make
