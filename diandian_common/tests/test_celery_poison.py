"""Namespaced queues and poison-proof consumers (issue 20): every queue is named after
CELERY_QUEUE_PREFIX, and a worker parks in ``<queue>.dead`` what no task can run (not JSON,
not a message's envelope, a body its serializer refuses, an unknown task, a message Celery
rejects), logs and counts it, and runs on with the next message."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import redis
import requests
from kombu import Producer

from diandian_common import config
from diandian_common.celery_app import make_celery, owner_of, queue_for
from diandian_common.testing import free_port
from diandian_common.tests.metrics_support import parse, stop, subprocess_env, value

POISON_PROBE_TASKS = """
    from diandian_common.celery_app import make_celery

    celery = make_celery("probe")

    @celery.task(name="probe.echo")
    def echo(payload):
        return payload
"""


def test_every_queue_is_named_after_the_prefix(monkeypatch):
    monkeypatch.delenv("CELERY_QUEUE_PREFIX", raising=False)
    assert queue_for("orders.retire_credits") == "diandian.orders"
    monkeypatch.setenv("CELERY_QUEUE_PREFIX", "stack-b.")
    assert (owner_of("ranking.record"), queue_for("ranking.record")) == ("ranking", "stack-b.ranking")

    app = make_celery("orders", broker_url="memory://")
    assert app.conf.task_default_queue == "stack-b.orders"
    # A task routed by name, and a worker started with `-Q orders` (the Procfile's, compose's
    # and the manifests'), both reach the prefixed queue.
    assert app.amqp.router.route({}, "ranking.record")["queue"].name == "stack-b.ranking"
    app.amqp.queues.select("orders")
    assert list(app.amqp.queues.consume_from) == ["stack-b.orders"]


def push_poison(broker: redis.Redis, celery, queue: str) -> list[bytes]:
    """One entry of each kind no task can run, in the order the worker meets them; the
    entries as they were on the queue (the unreadable ones) or the worker's envelopes."""
    unreadable = [b"not json {", b"\xff\xfe binary", json.dumps({"hello": "world"}).encode(), b"[1, 2]",
                  json.dumps({"properties": {"delivery_tag": "t", "body_encoding": "base64"},
                              "body": "!!! not base64"}).encode()]
    for entry in unreadable:
        broker.lpush(queue, entry)   # kombu pushes on the left and takes from the right
    with celery.connection_for_write() as connection:
        producer = Producer(connection)
        producer.publish({"no": "task"}, routing_key=queue, serializer="json")
        producer.publish(b"not json", routing_key=queue, content_type="application/json",
                         content_encoding="utf-8", headers={"task": "probe.echo", "id": "undecodable"})
        producer.publish({"v": 1}, routing_key=queue, serializer="pickle", headers={"task": "probe.echo",
                                                                                    "id": "pickled"})
    celery.send_task("probe.no_such_task", args=[{"v": 1}], queue=queue)
    return unreadable


def test_a_worker_parks_what_no_task_can_run_and_runs_the_next_message(tmp_path, redis_url, monkeypatch):
    # Celery reads CELERY_BROKER_URL before its configuration (the suite sets memory://).
    monkeypatch.setenv("CELERY_BROKER_URL", redis_url)
    monkeypatch.delenv("CELERY_QUEUE_PREFIX", raising=False)
    (tmp_path / "poison_probe_tasks.py").write_text(textwrap.dedent(POISON_PROBE_TASKS))
    queue, dead = config.celery_queue("probe"), f"{config.celery_queue('probe')}.dead"
    broker = redis.Redis.from_url(redis_url)
    sender = make_celery("probe-sender")
    unreadable = push_poison(broker, sender, queue)
    sender.send_task("probe.echo", args=[{"v": 1, "n": 7}], queue=queue)

    port = free_port()
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "poison_probe_tasks", "worker", "-Q", "probe", "--pool",
             "solo", "--loglevel", "INFO", "-n", "probe@%h", "--without-mingle", "--without-gossip"],
            env=subprocess_env(tmp_path, REDIS_URL=redis_url, WORKER_METRICS_PORT=str(port)),
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while b"probe.echo" not in log_path.read_bytes() or b"succeeded" not in log_path.read_bytes():
            assert worker.poll() is None, f"the worker exited ({worker.returncode}):\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"the next message never ran:\n{log_path.read_text()}"
            time.sleep(0.1)
        samples = parse(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
        assert worker.poll() is None
    finally:
        stop(worker)

    assert broker.llen(queue) == 0
    parked = broker.lrange(dead, 0, -1)[::-1]   # oldest first
    assert parked[:len(unreadable)] == unreadable, "the unreadable entries are kept as they were"
    refused = [json.loads(entry) for entry in parked[len(unreadable):]]
    assert [(m["headers"].get("task"), m["headers"].get("id")) for m in refused[:3]] == [
        (None, None), ("probe.echo", "undecodable"), ("probe.echo", "pickled")]
    assert refused[3]["headers"]["task"] == "probe.no_such_task"
    reasons = {"not_json": 2, "not_a_message": 3, "rejected": 2, "undecodable_body": 1, "unknown_task": 1}
    for reason, count in reasons.items():
        assert value(samples, "celery_poison_messages_total", queue=queue, reason=reason) == count, reason
    assert value(samples, "celery_dead_letters", queue=queue) == sum(reasons.values())
    assert b"no task can run (not_json) moved to diandian.probe.dead: not json {" in log_path.read_bytes()


def test_an_entry_that_cannot_be_parked_is_logged_not_raised(redis_url, caplog):
    from diandian_common.celery_app import park

    broker = redis.Redis.from_url(redis_url)
    broker.set("diandian.probe.dead", "a string, not a list")   # LPUSH onto it fails
    park(broker, "diandian.probe", b"x" * 500, "not_json")
    assert "is LOST" in caplog.text and "x" * 200 in caplog.text and "(500 characters)" in caplog.text
