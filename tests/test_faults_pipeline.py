"""Fault tests of the pipeline's repair across services (issue 20): messages the broker loses
(an unsynced AOF tail, a failover to a lagging replica) are sent again and applied once.

The loss is made as the chaos round made it: the consuming worker is frozen (SIGSTOP, the
whole process group) while a burst of orders is paid, the messages waiting for it are deleted
from its queue in the stack's own Redis, and the worker resumes. Then

- every ``ranking.record`` lost is sent again by orders' pipeline audit, which asks ranking
  again about every retired order it has not acknowledged (``orders.contribution_recorded``):
  every order ends on every board once;
- every ``certificates.render`` lost is sent again by ``orders.resend_stuck`` (the order
  stays ``retired`` without it): every order ends completed with one certificate;
- every revocation lost on its way to ranking (``ranking.revoke``) and to orders
  (``orders.certificate_revoked``) is sent again by certificates' revocation audit, which
  sends it until each confirms (``certificates.revocation_recorded``): the kilograms leave
  every board once and every order shows its certificate revoked;
- every registry notice lost (``certificates.show_registry``) is sent again by orders'
  pipeline audit until certificates confirms it (``orders.registry_shown``): the covered
  certificates show the registry record.

Each test prints ``placed / completed / duplicated / lost`` and how many messages it deleted.
"""
from __future__ import annotations

import re
import signal
import sqlite3
import time
import uuid
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
import redis

from diandian_common.celery_app import queue_for
from tests.outcomes import SCENE, assert_exactly_once, outcome
from tests.stack import UNLIMITED_RATES, ProcessStack, require_redis_server

pytestmark = [pytest.mark.integration, pytest.mark.faults]

PIPELINE_ENV = {
    **UNLIMITED_RATES,
    "ORDERS_OUTBOX_RELAY_SECONDS": "1", "CERTIFICATES_OUTBOX_RELAY_SECONDS": "1",
    # Production audits every 300 s and re-sends a stuck order's step after 300 s; tests
    # can't wait that long.
    "PIPELINE_AUDIT_SECONDS": "5",
    "ORDERS_STUCK_AFTER_SECONDS": "10", "ORDERS_RECONCILE_SECONDS": "5",
}
BURST = 200
# A few audit passes, each re-sent copy waiting twice as long as the one before it (the
# copies sent while the worker was frozen were deleted too), and the burst's work.
REPAIR_TIMEOUT_S = 240
# Every board an order of the scene is counted on: global and the scene's, each period.
BOARDS = [{"period": period, **scene} for scene in ({}, {"scene": SCENE})
          for period in ("all", "day", "week", "month")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_redis_server()
    with ProcessStack(tmp_path_factory.mktemp("faults-pipeline"), PIPELINE_ENV) as running:
        yield running


@pytest.fixture(autouse=True)
def every_process_running(stack):
    """A process that died in one test is restarted for the next (see tests/test_faults.py)."""
    yield
    revived = stack.revive()
    if revived:
        print(f"\n[stack] restarted after the test: {revived}")


@contextmanager
def frozen(stack, name: str):
    """The process (its whole group: Celery's children too) stopped, not killed: it keeps its
    broker connection and takes nothing more from its queue until it resumes."""
    stack.kill(name, signal.SIGSTOP)
    try:
        yield
    finally:
        stack.kill(name, signal.SIGCONT)


def lose_queue(stack, task_name: str) -> int:
    """Delete every message waiting in the queue of ``task_name``'s owner, as a broker that
    lost its last writes would; how many there were."""
    queue = queue_for(task_name)
    client = redis.Redis.from_url(stack.redis_url)
    try:
        with client.pipeline() as pipe:
            lost, _ = pipe.llen(queue).delete(queue).execute()
    finally:
        client.close()
    return lost


def place_and_pay(driver, project: dict, participant: str) -> dict[str, int]:
    """A burst of orders by one participant in the seeded scene, paid: order id → kg."""
    def guest(i: int) -> dict:
        return {"id": participant, "display_name": f"丢失 Lost {i}"}
    placed = driver.place_orders(project["id"], BURST, guest, scene=SCENE)
    driver.pay_all(placed)
    return {order_id: order["quantity_kg"] for order_id, order in placed.items()}


def acknowledged(var_dir: Path, order_ids) -> int:
    """How many of the orders ranking has acknowledged, in the orders service's own database."""
    order_ids = list(order_ids)
    with sqlite3.connect(f"file:{Path(var_dir) / 'orders.db'}?mode=ro", uri=True) as db:
        return db.execute(f"SELECT COUNT(*) FROM orders WHERE ranked_at IS NOT NULL AND id IN "
                          f"({', '.join('?' * len(order_ids))})", order_ids).fetchone()[0]


def log_text(stack, name: str, offset: int) -> str:
    return stack.log_path(name).read_bytes()[offset:].decode(errors="replace")


def test_lost_ranking_records_are_sent_again_and_counted_once_on_every_board(stack):
    driver = stack.driver
    project = driver.project("CDCER-CD-EBUS")
    participant = f"fault-lost-record-{uuid.uuid4().hex[:6]}"
    orders_log = stack.log_path("orders-worker").stat().st_size
    with frozen(stack, "ranking-worker"):
        placed = place_and_pay(driver, project, participant)
        result = outcome(driver, stack.var_dir, "ranking.record lost", placed, project["id"])
        lost = lose_queue(stack, "ranking.record")
    total = sum(placed.values())
    print(f"[ranking.record lost] {lost} messages deleted from {queue_for('ranking.record')}")
    # A frozen worker may have taken one message off the queue just before it stopped (and
    # runs it when it resumes); the others were waiting, and are gone.
    assert lost >= BURST - 2, "the records were not waiting in the queue: the test proved nothing"

    def on_every_board():
        return [(board, (driver.standing(participant, **board) or {}).get("kg")) for board in BOARDS]
    driver.wait_for(lambda: all(kg == total for _, kg in on_every_board()), timeout=REPAIR_TIMEOUT_S,
                    interval=1, what=f"{total} kg on every board")
    time.sleep(1)   # a record counted twice would show after the first
    assert all(kg == total for _, kg in on_every_board()), on_every_board()
    assert_exactly_once(driver, result, placed, {participant: total})

    # Ranking acknowledged every order, so the audit stops asking; it said what it re-sent.
    driver.wait_for(lambda: acknowledged(stack.var_dir, placed) == BURST, timeout=60, interval=1,
                    what="every contribution acknowledged")
    said = log_text(stack, "orders-worker", orders_log)
    assert "without ranking's acknowledgement" in said and "ranking.record sent again" in said


def test_lost_certificate_renders_are_sent_again_and_issue_one_certificate_each(stack):
    driver = stack.driver
    project = driver.project("CDCER-LQS-FOREST")
    participant = f"fault-lost-render-{uuid.uuid4().hex[:6]}"
    orders_log = stack.log_path("orders-worker").stat().st_size
    with frozen(stack, "certificates-worker"):
        placed = place_and_pay(driver, project, participant)
        driver.wait_for(lambda: all(driver.order(o)["status"] == "retired" for o in placed), timeout=90,
                        interval=0.5, what="every order retired, its render waiting")
        lost = lose_queue(stack, "certificates.render")
    print(f"[certificates.render lost] {lost} messages deleted from {queue_for('certificates.render')}")
    assert lost >= BURST - 2, "the renders were not waiting in the queue: the test proved nothing"

    result = outcome(driver, stack.var_dir, "certificates.render lost", placed, project["id"],
                     timeout=REPAIR_TIMEOUT_S)
    assert_exactly_once(driver, result, placed, {participant: sum(placed.values())})
    assert re.search(r"re-sent the next step of \d+ stuck orders \(.*certificates\.render: \d+",
                     log_text(stack, "orders-worker", orders_log))


def test_lost_revocations_are_sent_again_and_applied_once_by_ranking_and_orders(stack):
    driver = stack.driver
    project = driver.project("CDCER-CD-EBUS")
    participant = f"fault-lost-revoke-{uuid.uuid4().hex[:6]}"
    placed = place_and_pay(driver, project, participant)
    result = outcome(driver, stack.var_dir, "before the revocations", placed, project["id"])
    assert_exactly_once(driver, result, placed, {participant: sum(placed.values())})
    certificates = {order_id: order["certificate"]["id"] for order_id, order in result.orders.items()}
    certificates_log = stack.log_path("certificates-worker").stat().st_size

    with frozen(stack, "ranking-worker"), frozen(stack, "orders-worker"):
        for certificate_id in certificates.values():
            revoked = driver.api("POST", f"/api/v1/certificates/{certificate_id}/revoke", operator=True,
                                 json={"reason": "fault test: revocation lost by the broker"})
            assert revoked.status_code == 200, revoked.text
        # The revocations were relayed after their commits: they wait in the frozen workers' queues.
        driver.wait_for(lambda: queue_length(stack, "ranking.revoke") >= BURST - 2, timeout=30,
                        what="the revocations waiting for ranking")
        lost_ranking = lose_queue(stack, "ranking.revoke")
        lost_orders = lose_queue(stack, "orders.certificate_revoked")
    print(f"[revocations lost] {lost_ranking} ranking.revoke, {lost_orders} of orders' queue deleted")
    assert lost_ranking >= BURST - 2 and lost_orders >= BURST - 2, "nothing was lost: the test proved nothing"

    def on_any_board():
        return [(board, (driver.standing(participant, **board) or {}).get("kg") or 0) for board in BOARDS]
    driver.wait_for(lambda: not any(kg for _, kg in on_any_board()), timeout=REPAIR_TIMEOUT_S, interval=1,
                    what="the revoked kilograms off every board")
    driver.wait_for(lambda: all((driver.order(o)["certificate"] or {}).get("revoked_at") for o in placed),
                    timeout=REPAIR_TIMEOUT_S, interval=1, what="every order showing its certificate revoked")
    time.sleep(1)   # a revocation applied twice would show after the first
    assert not any(kg for _, kg in on_any_board()), on_any_board()
    for order_id in placed:
        order = driver.order(order_id)
        assert order["status"] == "completed" and order["certificate"]["id"] == certificates[order_id]
    said = log_text(stack, "certificates-worker", certificates_log)
    assert "revocations not confirmed by orders or ranking" in said


def test_lost_registry_notices_are_sent_again_and_shown_on_the_certificates(stack):
    driver = stack.driver
    code = f"CDCER-FLT-{uuid.uuid4().hex[:6].upper()}"
    created = driver.api("POST", "/api/v1/projects", operator=True, json={
        "code": code, "name": "登记簿丢失测试林", "name_en": "Lost Registry Notice Forest",
        "type": "forestry_carbon_sink", "location": "Chengdu", "vintage": 2025, "price_fen_per_tonne": 8000})
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    issued = driver.api("POST", f"/api/v1/projects/{project_id}/issuances", operator=True,
                        json={"first": 1, "last": 5000})
    assert issued.status_code == 201, issued.text
    orders = [driver.place_and_pay_order(project_id, kg, {"id": f"fault-rgr-{uuid.uuid4().hex[:6]}",
                                                          "display_name": "登记 Registry"}, complete=True)
              for kg in (600, 600)]
    certificates = [order["certificate"]["id"] for order in orders]
    orders_log = stack.log_path("orders-worker").stat().st_size

    with frozen(stack, "certificates-worker"):
        recorded = driver.api("POST", f"/api/v1/projects/{project_id}/registry-retirements", operator=True,
                              json={"quantity_t": 1, "registry_serial_first": "CCER-2025-000001",
                                    "registry_serial_last": "CCER-2025-001000",
                                    "cancellation_id": f"CXL-{uuid.uuid4().hex[:8].upper()}",
                                    "url": "https://registry.example.cn/cancellations/fault",
                                    "retired_on": date.today().isoformat()})
        assert recorded.status_code == 201, recorded.text
        driver.wait_for(lambda: queue_length(stack, "certificates.show_registry") >= 2, timeout=30,
                        what="the notices waiting for certificates")
        lost = lose_queue(stack, "certificates.show_registry")
    print(f"[certificates.show_registry lost] {lost} messages deleted")
    assert lost >= 2, "the notices were not waiting in the queue: the test proved nothing"

    def registry_of(certificate_id):
        return driver.api("GET", f"/api/v1/certificates/{certificate_id}").json()["registry"]
    driver.wait_for(lambda: all(registry_of(c) for c in certificates), timeout=REPAIR_TIMEOUT_S, interval=1,
                    what="the registry record on both covered certificates")
    assert [registry_of(c)["anchored_kg"] for c in certificates] == [600, 400]
    for order, certificate_id in zip(orders, certificates):
        assert driver.order(order["id"])["retirement"]["registry"] == registry_of(certificate_id)
    assert "registry records not confirmed by certificates" in log_text(stack, "orders-worker", orders_log)


def queue_length(stack, task_name: str) -> int:
    client = redis.Redis.from_url(stack.redis_url)
    try:
        return client.llen(queue_for(task_name))
    finally:
        client.close()
