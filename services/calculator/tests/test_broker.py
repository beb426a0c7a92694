"""The prerender message reaches a real Redis broker, on the calculator's queue."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time

import pytest
import redis

from diandian_common.celery_app import make_celery
from diandian_common.testing import free_port

from calculator import tasks

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


@pytest.fixture
def redis_url():
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)


def test_prerender_is_queued_by_name_on_the_calculator_queue(redis_url, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", redis_url)
    monkeypatch.setattr(tasks, "celery", make_celery("calculator"))
    tasks.request_prerender("dujiangyan")

    raw = redis.Redis.from_url(redis_url).lpop("calculator")
    message = json.loads(raw)
    assert message["headers"]["task"] == "calculator.prerender_scene"
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert args == [{"v": 1, "slug": "dujiangyan"}]
