"""Broker faults (issue 20): an entry on a service's queue that no task can run (not JSON,
JSON that is no message) does not stop its worker. It is parked in the queue's dead-letter
list and counted, the worker takes the next message, and an order placed and paid after it
goes through the whole pipeline.

The stack is a :class:`~tests.stack.ProcessStack` whose workers each serve their metrics on a
port of their own (``WORKER_METRICS_PORT``), where the test reads the count of parked entries.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
import requests

from diandian_common.config import SERVICES, celery_queue
from diandian_common.metrics import dead_letter_queue
from diandian_common.testing import free_port
from diandian_common.tests.metrics_support import parse, value
from tests.outcomes import SCENE, assert_exactly_once, outcome
from tests.stack import UNLIMITED_RATES, ProcessStack, require_redis_server

pytestmark = [pytest.mark.integration, pytest.mark.faults]

BROKER_ENV = {**UNLIMITED_RATES, "ORDERS_OUTBOX_RELAY_SECONDS": "1", "CERTIFICATES_OUTBOX_RELAY_SECONDS": "1"}
# How long a worker may take to reach the entries at the head of its idle queue.
PARKED_WITHIN_S = 60


class MeteredStack(ProcessStack):
    """A ProcessStack whose every worker serves its metrics on a port of its own (they share
    one environment otherwise, and two cannot bind the same port)."""

    def __init__(self, var_dir, extra_env=None):
        super().__init__(var_dir, extra_env)
        self.metrics_ports = {name: free_port() for name, kind in self.types.items() if kind.kind == "worker"}

    def start(self, name: str, wait: bool = True, timeout: float = 90) -> None:
        shared = self.env
        if name in self.metrics_ports:
            self.env = {**shared, "WORKER_METRICS_PORT": str(self.metrics_ports[name])}
        try:
            super().start(name, wait, timeout)
        finally:
            self.env = shared

    def worker_metrics(self, name: str) -> dict:
        return parse(requests.get(f"http://127.0.0.1:{self.metrics_ports[name]}/metrics", timeout=5).text)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_redis_server()
    with MeteredStack(tmp_path_factory.mktemp("faults-broker"), BROKER_ENV) as running:
        yield running


# The burst that goes through every step once the entries are parked (issue 20: 200 orders).
BURST = 200


def poison_for(service: str) -> list[bytes]:
    """What someone else's program might push onto the service's queue: the order the worker
    meets them in."""
    return [f"not json {{ {service}".encode(),
            json.dumps({"json": "but no message", "service": service}).encode()]


def test_entries_no_task_can_run_are_parked_and_the_pipeline_runs_on(stack):
    driver = stack.driver
    broker = redis.Redis.from_url(stack.redis_url)
    workers = {service: f"{service}-worker" for service in SERVICES}
    leaders = {name: stack.pids(name)[0] for name in workers.values()}

    for service in SERVICES:
        for entry in poison_for(service):
            broker.lpush(celery_queue(service), entry)   # kombu publishes on the left, takes from the right

    def parked() -> dict[str, list[bytes]]:
        exited = stack.exited()
        assert not exited, "a worker stopped on the entries: " + "\n".join(
            f"{name} ({code}):\n{stack.tail(name, 15)}" for name, code in exited.items())
        return {service: broker.lrange(dead_letter_queue(celery_queue(service)), 0, -1)[::-1]
                for service in SERVICES}

    expected = {service: poison_for(service) for service in SERVICES}
    deadline = time.monotonic() + PARKED_WITHIN_S
    while parked() != expected:
        assert time.monotonic() < deadline, f"not parked within {PARKED_WITHIN_S}s: {parked()}"
        time.sleep(0.2)

    # The workers take the next messages: an order goes through every step.
    project = driver.project("CDCER-CD-EBUS")
    participant = f"fault-poison-{uuid.uuid4().hex[:6]}"
    orders = driver.place_orders(project["id"], BURST, scene=SCENE,
                                 participant=lambda i: {"id": participant, "display_name": f"毒 Poison {i}"})
    placed = {order_id: order["quantity_kg"] for order_id, order in orders.items()}
    driver.pay_all(placed)
    result = outcome(driver, stack.var_dir, "entries no task can run", placed, project["id"])
    assert_exactly_once(driver, result, placed, {participant: sum(placed.values())})

    assert {name: stack.pids(name)[:1] for name in workers.values()} == \
        {name: [pid] for name, pid in leaders.items()}, "a worker was restarted"
    assert parked() == expected, "the dead-letter lists keep the entries as they were"
    for service, name in workers.items():
        samples = stack.worker_metrics(name)
        queue = celery_queue(service)
        for reason in ("not_json", "not_a_message"):
            counted = value(samples, "celery_poison_messages_total", queue=queue, reason=reason)
            assert counted == 1, (name, reason, counted)
        assert value(samples, "celery_dead_letters", queue=queue) == 2
