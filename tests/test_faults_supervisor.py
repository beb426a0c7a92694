"""Fault tests of ``make run``'s stack (issue 20): a process that dies is restarted while the
others run on and the stack keeps serving; Ctrl-C stops the workers first and Redis last, so
the messages they held go back to their queues; and
a scrape of a gunicorn process's metrics sums all its workers, whichever one answers.

One :class:`~tests.stack.Stack` (scripts/start-stack.sh under supervisord, as ``make run``
runs it, with make run's two gunicorn workers per API) serves the module; its last test stops
it with SIGINT, as Ctrl-C would.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from celery import Celery

from diandian_common.celery_app import queue_for
from diandian_common.metrics import KOMBU_UNACKED_KEY
from tests.outcomes import SCENE, assert_exactly_once, outcome
from tests.stack import UNLIMITED_RATES, Stack, session_members
from tests.stack_processes import read_procfile

pytestmark = [pytest.mark.integration, pytest.mark.faults]

UP_LINE = "[stack] Diandian is up: "
# make run's default (scripts/start-stack.sh), with a shorter graceful stop.
GUNICORN_OPTS = "--workers 2 --worker-class gthread --threads 4 --timeout 30 --graceful-timeout 5"


@pytest.fixture(scope="module")
def supervised(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("supervised"), extra_env={"GUNICORN_OPTS": GUNICORN_OPTS,
                                                                     **UNLIMITED_RATES})
    try:
        stack.start()
        wait_for_line(stack, UP_LINE)   # every worker answered a ping
        yield stack
    finally:
        stack.stop()


def wait_for(predicate, what: str, stack: Stack, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout} s:\n{stack.tail(40)}")


def wait_for_line(stack: Stack, text: str, timeout: float = 120) -> str:
    return wait_for(lambda: text in stack.log_path.read_text(errors="replace") and text,
                    f"no {text!r} in {stack.log_path}", stack, timeout)


def started(stack: Stack) -> list[str]:
    """The Procfile's processes this stack runs."""
    return [name for name in read_procfile() if stack.pid(name) is not None]


def kill_and_wait_for_restart(stack: Stack, name: str) -> tuple[int, int]:
    """SIGKILL the process (a crash: no clean-up of its own) and wait until supervisord has
    started it again and says so; returns its old and new pids."""
    old = stack.pid(name)
    assert old is not None, f"{name} is not running:\n{stack.tail(40)}"
    os.kill(old, signal.SIGKILL)
    new = wait_for(lambda: (pid := stack.pid(name)) not in (None, old) and pid,
                   f"{name} was not started again", stack)
    wait_for_line(stack, f"restarting {name} (terminated by SIGKILL) in 0 s")
    wait_for_line(stack, f"{name} is running again (pid {new})", timeout=60)
    return old, new


def test_a_killed_worker_main_process_is_restarted_and_the_stack_keeps_serving(supervised):
    names = started(supervised)
    assert {"redis", "gateway", "orders", "orders-worker", "orders-beat"} <= set(names), names
    before = {name: supervised.pid(name) for name in names}
    driver = supervised.driver
    project = driver.project("CDCER-CD-EBUS")
    participant = f"fault-killed-worker-{uuid.uuid4().hex[:6]}"

    # A 200-order burst placed and paid while the orders worker's main process is killed: the
    # orders placed, the payments taken and the retirements that worker holds survive its death.
    orders_before = order_count(supervised)
    with ThreadPoolExecutor(1) as background:
        burst = background.submit(lambda: place_and_pay(driver, project, participant))
        wait_for(lambda: burst.done() or order_count(supervised) >= orders_before + BURST // 4,
                 "the burst did not start", supervised, timeout=120)
        old, new = kill_and_wait_for_restart(supervised, "orders-worker")
        placed = burst.result(timeout=600)   # every request answered 201/202: no 5xx

    assert supervised.process.poll() is None, "the supervisor exited"
    assert old != new
    others = {name: supervised.pid(name) for name in names if name != "orders-worker"}
    assert others == {name: pid for name, pid in before.items() if name != "orders-worker"}, \
        "a process other than the one killed was restarted"
    result = outcome(driver, supervised.var_dir, "orders worker killed", placed, project["id"], timeout=300)
    assert_exactly_once(driver, result, placed, {participant: sum(placed.values())})


BURST = 200


def place_and_pay(driver, project: dict, participant: str) -> dict[str, int]:
    """The burst: BURST orders by one participant in the seeded scene, placed then paid from
    eight threads; order id → kg."""
    orders = driver.place_orders(project["id"], BURST, lambda i: {"id": participant,
                                                                 "display_name": f"重启 Restart {i}"},
                                 scene=SCENE)
    driver.pay_all(orders)
    return {order_id: order["quantity_kg"] for order_id, order in orders.items()}


def order_count(stack: Stack) -> int:
    """How many orders the stack holds, in the orders service's own database."""
    with sqlite3.connect(f"file:{stack.var_dir / 'orders.db'}?mode=ro", uri=True, timeout=5) as db:
        return db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]


def test_a_killed_redis_is_restarted_and_the_stack_keeps_serving(supervised):
    before = {name: supervised.pid(name) for name in started(supervised)}

    old, new = kill_and_wait_for_restart(supervised, "redis")

    assert supervised.process.poll() is None, "the supervisor exited"
    others = {name: supervised.pid(name) for name in before if name != "redis"}
    assert others == {name: pid for name, pid in before.items() if name != "redis"}, \
        "a process other than Redis was restarted"
    # The workers reconnect to the new Redis (its append-only file kept the queues).
    placed = supervised.driver.place_and_pay_order(kg=4)
    order = supervised.driver.wait_completed(placed["id"], timeout=180)
    assert order["retirement"]["serial_ranges"] and order["certificate"]["pdf_url"]


def request_count(stack: Stack, route: str) -> float:
    """The gateway's ``http_requests_total`` for GET ``route`` answered 200, from one scrape."""
    metrics = requests.get(f"{stack.url}/metrics", timeout=10)
    assert metrics.status_code == 200, metrics.text
    pattern = (r'^http_requests_total\{(?=[^}]*service="gateway")(?=[^}]*method="GET")'
               rf'(?=[^}}]*route="{re.escape(route)}")(?=[^}}]*status="200")[^}}]*\}} (\S+)$')
    return sum(float(value) for value in re.findall(pattern, metrics.text, re.MULTILINE))


def test_a_scrape_sums_every_gunicorn_worker_of_the_gateway(supervised):
    """Two gunicorn workers answer the gateway's requests and its scrapes: each scrape counts
    the requests of both (PROMETHEUS_MULTIPROC_DIR), so the counter never jumps back."""
    route = "/api/v1/<path:_rest>"   # the gateway's one rule for the API it forwards
    before = max(request_count(supervised, route) for _ in range(10))
    requests_made = 40
    for _ in range(requests_made):
        assert requests.get(f"{supervised.url}/api/v1/projects", timeout=10).status_code == 200
    scrapes = [request_count(supervised, route) for _ in range(10)]
    assert scrapes == [before + requests_made] * len(scrapes)


def test_ctrl_c_stops_the_workers_first_and_redis_last_so_no_message_stays_held(supervised, monkeypatch):
    names = started(supervised)
    assert "redis" in names and len(names) > 1
    supervisord = supervised.process
    # Messages for the orders worker to hold when Ctrl-C comes: many cheap, idempotent relays.
    # (The root conftest's CELERY_BROKER_URL=memory:// would override the broker given.)
    monkeypatch.setenv("CELERY_BROKER_URL", supervised.redis_url)
    publisher = Celery(broker=supervised.redis_url)
    for _ in range(2000):
        publisher.send_task("orders.relay_outbox", queue=queue_for("orders.relay_outbox"))
    publisher.close()
    broker = redis.Redis.from_url(supervised.redis_url)
    wait_for(lambda: broker.hlen(KOMBU_UNACKED_KEY) > 0, "the worker took no message", supervised, 30)
    broker.close()

    supervisord.send_signal(signal.SIGINT)

    wait_for(lambda: supervisord.poll() is not None, "the stack did not stop", supervised, timeout=120)
    assert session_members(supervised.session) == [], "processes of the stack outlived it"
    stopped = re.findall(r" stopped: (\S+) \(", supervised.supervisor_log.read_text())
    assert sorted(name for name in stopped if name in names) == sorted(names), stopped
    assert [name for name in stopped if name in names][-1] == "redis", stopped
    wait_for_line(supervised, "every process has stopped", timeout=10)
    # The workers gave back what they held while Redis was still there to take it.
    with redis_on(supervised.var_dir / "redis") as data:
        assert data.hlen(KOMBU_UNACKED_KEY) == 0


@contextlib.contextmanager
def redis_on(data_dir: Path):
    """A Redis of its own on the stack's data (its append-only file), as the Procfile starts it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir",
                               str(data_dir), "--appendonly", "yes", "--save", ""],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port, socket_connect_timeout=1)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield client
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=30)
