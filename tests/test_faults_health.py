"""Loud failures (issue 20), with real processes: a frozen scheduler and a certificate storage
that cannot take a file are named by the gateway's ``/healthz`` and in the logs within a
minute, and go away when the fault does. While the storage cannot take a file no PDF is
rendered (each attempt is put off before the render, at WARNING with the cause); once it can,
the certificates waiting are issued, each order completed exactly once.

The heartbeat is every second and stale after five here (production: 10 s and 30 s), so the
test does not wait half a minute for what it checks; every wait is a poll with a deadline.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.outcomes import assert_exactly_once, outcome
from tests.stack import ProcessStack, require_redis_server
from tests.test_faults import FAULT_ENV, assert_all_running, place_burst

pytestmark = [pytest.mark.integration, pytest.mark.faults]

HEALTH_ENV = {**FAULT_ENV, "SCHEDULER_HEARTBEAT_SECONDS": "1", "SCHEDULER_STALE_SECONDS": "5"}
# The issue's bound: visible on /healthz and in the logs within a minute.
VISIBLE_WITHIN_S = 60
SCHEDULERS = {"orders-beat", "certificates-beat", "ranking-beat"}
STORAGE_ORDERS = 200   # issue 20: every fault under a 200-order burst
FROZEN_BURST = 200
RENDERED = "rendered the PDF of certificate "
PUT_OFF = "certificates.render put off: certificate storage "


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_redis_server()
    with ProcessStack(tmp_path_factory.mktemp("faults-health"), HEALTH_ENV) as running:
        yield running


@pytest.fixture(scope="module")
def driver(stack):
    return stack.driver


def health(driver) -> tuple[int, dict]:
    answer = driver.api("GET", "/healthz")
    return answer.status_code, answer.json()


def healthy(driver) -> dict:
    def ok():
        status, body = health(driver)
        return body if status == 200 else None
    return driver.wait_for(ok, timeout=VISIBLE_WITHIN_S, interval=0.5,
                           what="the gateway's /healthz to be 200")


def log_records(stack: ProcessStack, name: str, offset: int = 0) -> list[dict]:
    """The JSON lines process ``name`` logged past byte ``offset`` of its log."""
    with open(stack.log_path(name), "rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:   # a process's own plain lines (gunicorn's), or a line being written
            continue
    return [record for record in records if isinstance(record, dict) and "message" in record]


def log_size(stack: ProcessStack, name: str) -> int:
    path = stack.log_path(name)
    return path.stat().st_size if path.exists() else 0


# --- a frozen scheduler ------------------------------------------------------------------------

def test_a_frozen_scheduler_is_named_by_healthz_and_in_the_log_then_recovers(stack, driver):
    body = healthy(driver)
    assert set(body["schedulers"]) == SCHEDULERS, body
    assert all(section["status"] == "ok" and section["age_seconds"] < 5
               for section in body["schedulers"].values())
    api_log = log_size(stack, "orders")

    stack.kill("orders-beat", signal.SIGSTOP)   # frozen: alive, holding its lock, doing nothing
    try:
        def named():
            status, body = health(driver)
            return body if status == 503 and "orders-beat" in body["services"]["orders"] else None
        body = driver.wait_for(named, timeout=VISIBLE_WITHIN_S, interval=0.5,
                               what="/healthz to answer 503 naming orders-beat")
        print(f"\n[scheduler frozen] /healthz: {body['services']['orders']}")
        assert body["services"]["orders"].startswith(
            "degraded (scheduler: error: orders-beat's last heartbeat is ")
        # Stale means older than 5 s; the age shown is rounded to a tenth (5.04 s reads 5.0).
        assert body["schedulers"]["orders-beat"]["age_seconds"] >= 5
        assert body["schedulers"]["orders-beat"]["stale_after_seconds"] == 5
        # Only the frozen one: the other schedulers, services and Redis are fine.
        assert {name: v for name, v in body["services"].items() if name != "orders"} == \
            {"calculator": "ok", "certificates": "ok", "ranking": "ok", "redis": "ok"}, body
        assert {name for name, s in body["schedulers"].items() if s["status"] != "ok"} == {"orders-beat"}
        warned = driver.wait_for(
            lambda: [r for r in log_records(stack, "orders", api_log)
                     if r["level"] == "WARNING" and "orders health: scheduler failing" in r["message"]],
            timeout=VISIBLE_WITHIN_S, interval=0.5, what="the orders API's warning about its scheduler")
        assert "orders-beat's last heartbeat is" in warned[0]["message"]

        # Guests go on paying meanwhile: a 200-order burst placed and paid while the scheduler
        # stays frozen (the outbox is relayed after each commit, not only by the scheduler).
        project = driver.project("CDCER-CD-EBUS")
        participant = f"fault-frozen-beat-{uuid.uuid4().hex[:6]}"
        placed = place_burst(driver, project, participant, count=FROZEN_BURST)
        driver.pay_all(placed)
        result = outcome(driver, stack.var_dir, "scheduler frozen", placed, project["id"], timeout=300)
    finally:
        stack.kill("orders-beat", signal.SIGCONT)

    assert_exactly_once(driver, result, placed, {participant: sum(placed.values())})
    body = healthy(driver)
    assert body["schedulers"]["orders-beat"]["status"] == "ok"
    assert_all_running(stack)


# --- a storage that cannot take a file --------------------------------------------------------

def takes_a_file(directory: Path) -> bool:
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".probe-")
    except OSError:
        return False
    os.close(fd)
    Path(probe).unlink()
    return True


@contextmanager
def unwritable(directory: Path):
    """``directory`` refuses new files while in the block: its mode 0500, and, for a root
    user (whom modes do not stop), the immutable attribute (chattr +i)."""
    mode = stat.S_IMODE(directory.stat().st_mode)
    directory.chmod(0o500)
    immutable = False
    try:
        if takes_a_file(directory) and shutil.which("chattr"):
            immutable = subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode == 0
        if takes_a_file(directory):
            pytest.skip(f"cannot make {directory} unwritable here (root, and no chattr +i on its filesystem)")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        directory.chmod(mode)


def test_a_storage_that_cannot_take_a_file_renders_nothing_is_named_and_then_issues(stack, driver):
    healthy(driver)
    storage = stack.var_dir / "certificates"
    project = driver.project("CDCER-CD-EBUS")
    participant = f"fault-storage-{uuid.uuid4().hex[:6]}"
    placed = place_burst(driver, project, participant, count=STORAGE_ORDERS)
    worker_log, api_log = log_size(stack, "certificates-worker"), log_size(stack, "certificates")

    with unwritable(storage):
        def named():
            status, body = health(driver)
            return body if status == 503 and "storage" in body["services"]["certificates"] else None
        body = driver.wait_for(named, timeout=VISIBLE_WITHIN_S, interval=0.5,
                               what="/healthz to answer 503 naming the certificates' storage")
        print(f"\n[storage unwritable] /healthz: {body['services']['certificates']}")
        assert body["services"]["certificates"].startswith("degraded (storage: error: StorageUnavailable: ")
        assert "cannot take a file: PermissionError" in body["services"]["certificates"]

        driver.pay_all(placed)
        # Every order's render tried at least twice (the first try and a retry), each put off
        # at WARNING with the cause.
        def put_off():
            records = [r for r in log_records(stack, "certificates-worker", worker_log)
                       if r["message"].startswith(PUT_OFF)]
            return records if len({r["order_id"] for r in records}) == len(placed) \
                and len(records) >= 2 * len(placed) else None
        records = driver.wait_for(put_off, timeout=VISIBLE_WITHIN_S, interval=0.5,
                                  what="every render put off twice, in the worker's log")
        assert {r["level"] for r in records} == {"WARNING"}
        assert all("cannot take a file: PermissionError" in r["message"] for r in records), records[0]
        assert any("certificates health: storage failing" in r["message"] and r["level"] == "WARNING"
                   for r in log_records(stack, "certificates", api_log))
        while_broken = log_records(stack, "certificates-worker", worker_log)
        assert not [r for r in while_broken if r["message"].startswith(RENDERED)], "rendered while unwritable"
        assert {driver.order(o)["status"] for o in placed} == {"retired"}
        print(f"[storage unwritable] {len(records)} renders put off, none rendered")

    healthy(driver)
    result = outcome(driver, stack.var_dir, "storage unwritable", placed, project["id"])
    assert_exactly_once(driver, result, placed, {participant: sum(placed.values())})
    rendered = {r["message"][len(RENDERED):].split()[0]
                for r in log_records(stack, "certificates-worker", worker_log)
                if r["message"].startswith(RENDERED)}
    # Each certificate rendered once the storage took files again (a redelivery racing its
    # retry may render one more, which loses the race and is thrown away).
    assert {order["certificate"]["id"] for order in result.orders.values()} <= rendered
    assert_all_running(stack)
