"""Orders end to end through the gateway with real workers (the session's shared ``stack``):
an operator's new project, an order from an estimate, and every message of the pipeline
delivered a second time."""
from __future__ import annotations

import base64
import json
import math
import sqlite3
import time
import uuid

import pytest
import redis
from celery import Celery

from tests.stack import OPERATOR_KEY

pytestmark = pytest.mark.integration

OPERATOR = {"X-API-Key": OPERATOR_KEY}
PIPELINE_TASKS = ("orders.retire_credits", "certificates.render", "ranking.record", "orders.certificate_issued")
QUEUES = ("orders", "certificates", "ranking")


def place(stack, body: dict) -> dict:
    response = stack.api("POST", "/api/v1/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


def pay_and_complete(stack, order_id: str) -> dict:
    paid = stack.api("POST", f"/api/v1/orders/{order_id}/payment")
    assert paid.status_code == 202, paid.text

    def completed():
        order = stack.api("GET", f"/api/v1/orders/{order_id}").json()
        return order if order["status"] == "completed" else None
    return stack.wait_for(completed, timeout=90, what=f"{order_id} completed")


def test_operator_creates_a_project_issues_serials_and_sells_them(stack):
    code = f"CDCER-E2E-{uuid.uuid4().hex[:6].upper()}"
    project = {"code": code, "name": "端到端测试林", "name_en": "End-to-end Test Forest",
               "type": "forestry_carbon_sink", "location": "Chengdu", "vintage": 2025, "price_fen_per_tonne": 7000}
    refused = stack.api("POST", "/api/v1/projects", json=project)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    created = stack.api("POST", "/api/v1/projects", json=project, headers=OPERATOR)
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    issued = stack.api("POST", f"/api/v1/projects/{project_id}/issuances", json={"first": 1, "last": 1000},
                       headers=OPERATOR)
    assert issued.status_code == 201 and issued.json()["project"]["available_kg"] == 1000
    overlap = stack.api("POST", f"/api/v1/projects/{project_id}/issuances", json={"first": 1000, "last": 2000},
                        headers=OPERATOR)
    assert overlap.status_code == 409 and overlap.json()["error"]["code"] == "serials_overlap"

    buyer = {"id": f"e2e-op-{uuid.uuid4().hex[:6]}", "display_name": "Operator Test"}
    order = place(stack, {"project_id": project_id, "quantity_kg": 25, "participant": buyer})
    assert order["amount_fen"] == math.ceil(25 * 7000 / 1000)
    done = pay_and_complete(stack, order["id"])
    assert done["retirement"]["serial_range"] == f"{code}-2025:000000001-000000025"

    repriced = stack.api("PATCH", f"/api/v1/projects/{project_id}", json={"price_fen_per_tonne": 9000},
                         headers=OPERATOR)
    assert repriced.status_code == 200 and repriced.json()["price_fen_per_tonne"] == 9000
    second = place(stack, {"project_id": project_id, "quantity_kg": 25, "participant": buyer})
    assert second["amount_fen"] == math.ceil(25 * 9000 / 1000)
    assert stack.api("GET", f"/api/v1/orders/{order['id']}").json()["amount_fen"] == order["amount_fen"]

    listed = stack.api("GET", "/api/v1/orders", params={"project": code}, headers=OPERATOR)
    assert listed.status_code == 200, listed.text
    assert [(o["id"], o["status"]) for o in listed.json()["items"]] == \
        [(order["id"], "completed"), (second["id"], "pending_payment")]
    inventory = stack.api("GET", f"/api/v1/projects/{project_id}").json()
    assert (inventory["issued_kg"], inventory["retired_kg"], inventory["reserved_kg"]) == (1000, 25, 25)


def test_an_order_for_an_estimate_buys_its_total(stack):
    estimate = stack.api("POST", "/api/v1/estimates",
                         json={"kind": "trip", "activities": [{"type": "rail", "distance_km": 100}]})
    assert estimate.status_code == 201, estimate.text
    total_kg = estimate.json()["total_kg"]
    assert total_kg > 0
    project = stack.api("GET", "/api/v1/projects").json()["items"][0]
    order = place(stack, {"project_id": project["id"], "estimate_id": estimate.json()["id"],
                          "participant": {"id": f"e2e-est-{uuid.uuid4().hex[:6]}", "display_name": "Rail Rider"}})
    assert order["quantity_kg"] == math.ceil(total_kg)
    assert order["amount_fen"] == math.ceil(order["quantity_kg"] * project["price_fen_per_tonne"] / 1000)
    done = pay_and_complete(stack, order["id"])
    retirement = done["retirement"]
    assert retirement["serial_last"] - retirement["serial_first"] + 1 == order["quantity_kg"]


# --- every message twice ---------------------------------------------------------------

def pipeline_messages(order: dict) -> dict[str, dict]:
    """The payloads the pipeline sent for ``order``, rebuilt from its public JSON (SPEC §3)."""
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


def in_flight(broker: redis.Redis, order_id: str) -> list[str]:
    """Pipeline messages about ``order_id`` still queued or taken but not acknowledged
    (workers ack late, so a message leaves the broker only once its task has run)."""
    messages = [json.loads(raw) for queue in QUEUES for raw in broker.lrange(queue, 0, -1)]
    messages += [json.loads(raw)[0] for raw in broker.hvals("unacked")]
    found = []
    for message in messages:
        task = message.get("headers", {}).get("task")
        if task in PIPELINE_TASKS:
            args = json.loads(base64.b64decode(message["body"]))[0]
            if args and isinstance(args[0], dict) and args[0].get("order_id") == order_id:
                found.append(task)
    return found


def settled(broker: redis.Redis, order_id: str, polls: int = 4) -> bool:
    """Nothing about the order on the broker, several polls in a row: a message is briefly
    in neither the queue nor ``unacked`` while a worker takes it, and a finished render
    has already queued the ``orders.certificate_issued`` it causes before it is acked."""
    for _ in range(polls):
        if in_flight(broker, order_id):
            return False
        time.sleep(0.25)
    return True


def observable_state(stack, order_id: str, participant_id: str, scene: str) -> dict:
    order = stack.api("GET", f"/api/v1/orders/{order_id}").json()
    ledger = stack.api("GET", "/api/v1/ledger", params={"project": order["project"]["id"], "limit": 1000}).json()
    ranking = {board: stack.api("GET", f"/api/v1/rankings/participants/{participant_id}", params=params).json()["kg"]
               for board, params in (("scene", {"scene": scene}), ("all", {}))}
    with sqlite3.connect(f"file:{stack.var_dir / 'certificates.db'}?mode=ro", uri=True) as certificates:
        certificate_rows = certificates.execute("SELECT id FROM certificates WHERE order_id = ?", (order_id,)).fetchall()
    project = stack.api("GET", f"/api/v1/projects/{order['project']['id']}").json()
    return {
        "order": order,
        "ledger_entries": [e for e in ledger["items"] if e["order_id"] == order_id],
        "ranking_kg": ranking,
        "certificates": certificate_rows,
        "certificate": stack.api("GET", f"/api/v1/certificates/{order['certificate']['id']}").json(),
        "retired_kg": project["retired_kg"],
    }


def test_every_pipeline_message_delivered_twice_changes_nothing(stack):
    project = next(p for p in stack.api("GET", "/api/v1/projects").json()["items"] if p["code"] == "CDCER-XJ-PV")
    participant = {"id": f"e2e-twice-{uuid.uuid4().hex[:6]}", "display_name": "重复 Twice",
                   "organization": "At-Least-Once Ltd"}
    scene = "cdcn-forum-2021"
    created = place(stack, {"project_id": project["id"], "quantity_kg": 11, "participant": participant,
                            "scene": scene})
    order = pay_and_complete(stack, created["id"])
    broker = redis.Redis.from_url(stack.redis_url)
    stack.wait_for(lambda: settled(broker, order["id"]), timeout=30, what="the first deliveries to finish")
    before = observable_state(stack, order["id"], participant["id"], scene)
    assert len(before["ledger_entries"]) == 1 and len(before["certificates"]) == 1
    assert before["ranking_kg"] == {"scene": 11, "all": 11}

    # An explicit connection: the test session's CELERY_BROKER_URL (memory://, see the root
    # conftest.py) would otherwise win over any broker given to the app.
    publisher = Celery(broker=stack.redis_url)
    with publisher.connection_for_write(stack.redis_url) as connection:
        duplicates = {name: publisher.send_task(name, args=[payload], queue=name.split(".")[0],
                                                connection=connection).id
                      for name, payload in pipeline_messages(order).items()}
    publisher.close()

    def every_duplicate_ran():  # the workers log each task's outcome with its id
        log = stack.log_path.read_text(errors="replace")
        return all(f"{name}[{task_id}] succeeded" in log for name, task_id in duplicates.items())
    stack.wait_for(every_duplicate_ran, timeout=60, what="every duplicate to run")
    # ... and what they caused: a second render announces the certificate again.
    stack.wait_for(lambda: settled(broker, order["id"]), timeout=30, what="the follow-ups to be consumed")

    after = observable_state(stack, order["id"], participant["id"], scene)
    assert after == before
    assert after["order"]["status"] == "completed"
    broker.close()
