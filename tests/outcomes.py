"""What the end-to-end tests judge a stack by, shared by tests/test_*.py and tests/compose:
the pipeline's messages (rebuilt, sent again, looked for on the broker), an order's
observable state, and "every order completed exactly once" (issue 8's placed / completed /
duplicated / lost). Requests go through a :class:`diandian_common.testing.Driver`."""
from __future__ import annotations

import base64
import json
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from celery import Celery

from diandian_common.celery_app import queue_for
from diandian_common.config import celery_queue
from diandian_common.testing import Driver

SCENE = "cdcn-forum-2021"          # seeded by `flask --app calculator.app seed-demo`
PIPELINE_TASKS = ("orders.retire_credits", "certificates.render", "ranking.record", "orders.certificate_issued")
QUEUES = tuple(celery_queue(service) for service in ("orders", "certificates", "ranking"))
PIPELINE_TIMEOUT_S = 90
# A certificate worker's log lines about one render (a render received and not finished is under way).
RENDER_RECEIVED = re.compile(r"certificates\.render\[([0-9a-f-]+)\] received")
RENDER_FINISHED = re.compile(r"certificates\.render\[([0-9a-f-]+)\] (?:succeeded|raised|retry)")


# --- messages --------------------------------------------------------------------------------

def publish(broker_url: str, messages: list[tuple[str, dict]]) -> list[str]:
    """Send each (task name, payload) to its queue on ``broker_url``, as another service would;
    the task ids. An explicit connection: the test session's CELERY_BROKER_URL (memory://, see
    the root conftest.py) would otherwise win over any broker given to the app."""
    publisher = Celery(broker=broker_url)
    try:
        with publisher.connection_for_write(broker_url) as connection:
            return [publisher.send_task(name, args=[payload], queue=queue_for(name), connection=connection).id
                    for name, payload in messages]
    finally:
        publisher.close()


def pipeline_messages(order: dict) -> dict[str, dict]:
    """The payloads the pipeline sent for ``order``, rebuilt from its public JSON (docs/contract.md §4)."""
    retirement, certificate, participant = order["retirement"], order["certificate"], order["participant"]
    scene = order["scene"]
    return {
        "orders.retire_credits": {"v": 1, "order_id": order["id"]},
        "certificates.render": {
            "v": 1, "order_id": order["id"], "holder": participant["display_name"],
            "organization": participant["organization"], "quantity_kg": order["quantity_kg"],
            "project": order["project"], "serial_range": retirement["serial_range"], "scene": scene,
            "issued_at": retirement["retired_at"], "ledger_hash": retirement["ledger_hash"]},
        "ranking.record": {
            "v": 1, "order_id": order["id"], "participant_id": participant["id"],
            "display_name": participant["display_name"], "organization": participant["organization"],
            "scene": scene["slug"] if scene else None, "quantity_kg": order["quantity_kg"],
            "occurred_at": retirement["retired_at"]},
        "orders.certificate_issued": {
            "v": 1, "order_id": order["id"], "certificate_id": certificate["id"],
            "verify_code": certificate["verify_url"].rsplit("/", 1)[1],
            "pdf_url": certificate["pdf_url"], "verify_url": certificate["verify_url"]},
    }


def in_flight(broker: redis.Redis, order_ids) -> list[str]:
    """Pipeline messages about ``order_ids`` still queued or taken but not acknowledged
    (workers ack late, so a message leaves the broker only once its task has run)."""
    order_ids = {order_ids} if isinstance(order_ids, str) else set(order_ids)
    messages = [json.loads(raw) for queue in QUEUES for raw in broker.lrange(queue, 0, -1)]
    messages += [json.loads(raw)[0] for raw in broker.hvals("unacked")]
    found = []
    for message in messages:
        task = message.get("headers", {}).get("task")
        if task in PIPELINE_TASKS:
            args = json.loads(base64.b64decode(message["body"]))[0]
            if args and isinstance(args[0], dict) and args[0].get("order_id") in order_ids:
                found.append(task)
    return found


def settled(broker: redis.Redis, order_ids, polls: int = 4) -> bool:
    """Nothing about the orders on the broker, several polls in a row: a message is briefly
    in neither the queue nor ``unacked`` while a worker takes it, and a finished render
    has already queued the ``orders.certificate_issued`` it causes before it is acked."""
    for _ in range(polls):
        if in_flight(broker, order_ids):
            return False
        time.sleep(0.25)
    return True


# --- state -------------------------------------------------------------------------------------

def certificate_rows(var_dir: Path, order_ids) -> dict[str, int]:
    """Certificates per order in the certificates service's own database (a stack's var_dir)."""
    with sqlite3.connect(f"file:{Path(var_dir) / 'certificates.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT order_id, COUNT(*) FROM certificates GROUP BY order_id").fetchall()
    counts = dict(rows)
    return {order_id: counts.get(order_id, 0) for order_id in order_ids}


def observable_state(driver: Driver, var_dir: Path, order_id: str, participant_id: str, scene: str) -> dict:
    """Everything a duplicate message could change about an order, as seen from outside."""
    order = driver.order(order_id)
    ledger = driver.api("GET", "/api/v1/ledger", params={"project": order["project"]["id"], "limit": 1000}).json()
    ranking = {board: driver.standing(participant_id, expect=(200,), **params)["kg"]
               for board, params in (("scene", {"scene": scene}), ("all", {}))}
    with sqlite3.connect(f"file:{Path(var_dir) / 'certificates.db'}?mode=ro", uri=True) as certificates:
        rows = certificates.execute("SELECT id FROM certificates WHERE order_id = ?", (order_id,)).fetchall()
    project = driver.api("GET", f"/api/v1/projects/{order['project']['id']}").json()
    return {
        "order": order,
        "ledger_entries": [e for e in ledger["items"] if e["order_id"] == order_id],
        "ranking_kg": ranking,
        "certificates": rows,
        "certificate": driver.api("GET", f"/api/v1/certificates/{order['certificate']['id']}").json(),
        "retired_kg": project["retired_kg"],
    }


# --- exactly once ------------------------------------------------------------------------------

@dataclass
class Outcome:
    label: str
    orders: dict[str, dict]                        # order id → its last JSON
    completed: list[str]
    ledger: dict[str, int]                         # order id → ledger entries
    certificates: dict[str, int]                   # order id → certificate rows

    @property
    def duplicated(self) -> list[str]:
        return [o for o in self.orders if self.ledger[o] > 1 or self.certificates[o] > 1]

    @property
    def lost(self) -> list[str]:
        return [o for o in self.orders if o not in self.completed]

    def report(self) -> None:
        print(f"\n[{self.label}] placed={len(self.orders)} completed={len(self.completed)} "
              f"duplicated={len(self.duplicated)} lost={len(self.lost)}")


def outcome(driver: Driver, var_dir: Path, label: str, placed: dict[str, int], project_id: str,
            timeout: float = PIPELINE_TIMEOUT_S) -> Outcome:
    """Wait (up to ``timeout``) for every order (id → kg) to complete, then count what happened."""
    pending, final = set(placed), {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for order_id in list(pending):
            order = driver.order(order_id)
            final[order_id] = order
            if order["status"] == "completed":
                pending.discard(order_id)
        if pending:
            time.sleep(0.5)
    ledger = [e["order_id"] for e in driver.ledger_entries(project_id)]
    result = Outcome(label, final, [o for o, order in final.items() if order["status"] == "completed"],
                     {o: ledger.count(o) for o in placed}, certificate_rows(var_dir, placed))
    result.report()
    return result


def assert_exactly_once(driver: Driver, result: Outcome, placed: dict[str, int], ranked: dict[str, int],
                        ranking_timeout: float = 30) -> None:
    """Every order completed once: one ledger entry, one certificate, its own serials (as many
    as its kilograms, no overlap), and each participant of ``ranked`` (id → kg) ranked with
    exactly that many kilograms, still so a second later."""
    assert not result.lost, f"not completed: {[(o, result.orders[o]['status']) for o in result.lost]}"
    assert not result.duplicated, f"more than once: {result.duplicated}"
    assert set(result.ledger.values()) == {1} and set(result.certificates.values()) == {1}
    certificates = [order["certificate"]["id"] for order in result.orders.values()]
    assert len(set(certificates)) == len(certificates)
    ranges = sorted((o["retirement"]["serial_first"], o["retirement"]["serial_last"])
                    for o in result.orders.values())
    for (_, last), (first, _) in zip(ranges, ranges[1:]):
        assert last < first, f"overlapping serial ranges {ranges}"
    assert all(o["retirement"]["serial_last"] - o["retirement"]["serial_first"] + 1 == placed[i]
               for i, o in result.orders.items())

    def ranked_kg():
        return {participant: (driver.standing(participant) or {}).get("kg") for participant in ranked}
    driver.wait_for(lambda: ranked_kg() == ranked, timeout=ranking_timeout, what=f"rankings of {ranked} kg")
    time.sleep(1)  # a record applied twice would show up after the first
    assert ranked_kg() == ranked
