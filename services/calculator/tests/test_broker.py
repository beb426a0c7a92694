"""The prerender message reaches a real Redis broker, on the calculator's queue."""
from __future__ import annotations

import base64
import json

import redis

from diandian_common.celery_app import make_celery, queue_for

from calculator import tasks
from calculator.wiring import wiring

# redis_url: the session's own redis-server, emptied for the test (diandian_common.testing).


def test_prerender_is_queued_by_name_on_the_calculator_queue(redis_url, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", redis_url)
    monkeypatch.setattr(wiring, "celery", make_celery("calculator", broker_url=redis_url))
    tasks.request_prerender("dujiangyan")

    raw = redis.Redis.from_url(redis_url).lpop(queue_for("calculator.prerender_scene"))
    message = json.loads(raw)
    assert message["headers"]["task"] == "calculator.prerender_scene"
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert args == [{"v": 1, "slug": "dujiangyan"}]
