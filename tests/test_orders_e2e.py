"""Orders end to end through the gateway with real workers (the session's shared ``stack``):
an operator's new project, an order from an estimate, and every message of the pipeline
delivered a second time to a burst of orders."""
from __future__ import annotations

import math
import uuid

import pytest
import redis

from tests.outcomes import (SCENE, assert_exactly_once, observable_state, outcome, pipeline_messages, publish,
                            settled)
from tests.stack import OPERATOR_KEY

pytestmark = pytest.mark.integration

OPERATOR = {"X-API-Key": OPERATOR_KEY}


def test_operator_creates_a_project_issues_serials_and_sells_them(driver):
    code = f"CDCER-E2E-{uuid.uuid4().hex[:6].upper()}"
    project = {"code": code, "name": "端到端测试林", "name_en": "End-to-end Test Forest",
               "type": "forestry_carbon_sink", "location": "Chengdu", "vintage": 2025, "price_fen_per_tonne": 7000}
    refused = driver.api("POST", "/api/v1/projects", json=project)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    created = driver.api("POST", "/api/v1/projects", json=project, headers=OPERATOR)
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    issued = driver.api("POST", f"/api/v1/projects/{project_id}/issuances", json={"first": 1, "last": 1000},
                       headers=OPERATOR)
    assert issued.status_code == 201 and issued.json()["project"]["available_kg"] == 1000
    overlap = driver.api("POST", f"/api/v1/projects/{project_id}/issuances", json={"first": 1000, "last": 2000},
                        headers=OPERATOR)
    assert overlap.status_code == 409 and overlap.json()["error"]["code"] == "serials_overlap"

    buyer = {"id": f"e2e-op-{uuid.uuid4().hex[:6]}", "display_name": "Operator Test"}
    order = driver.place_and_pay_order(project_id, 25, buyer)
    assert order["amount_fen"] == math.ceil(25 * 7000 / 1000)
    done = driver.wait_completed(order["id"])
    assert done["retirement"]["serial_range"] == f"{code}-2025:000000001-000000025"

    repriced = driver.api("PATCH", f"/api/v1/projects/{project_id}", json={"price_fen_per_tonne": 9000},
                         headers=OPERATOR)
    assert repriced.status_code == 200 and repriced.json()["price_fen_per_tonne"] == 9000
    second = driver.place_order(project_id, 25, buyer)
    assert second["amount_fen"] == math.ceil(25 * 9000 / 1000)
    assert driver.api("GET", f"/api/v1/orders/{order['id']}").json()["amount_fen"] == order["amount_fen"]

    listed = driver.api("GET", "/api/v1/orders", params={"project": code}, headers=OPERATOR)
    assert listed.status_code == 200, listed.text
    assert [(o["id"], o["status"]) for o in listed.json()["items"]] == \
        [(order["id"], "completed"), (second["id"], "pending_payment")]
    inventory = driver.api("GET", f"/api/v1/projects/{project_id}").json()
    assert (inventory["issued_kg"], inventory["retired_kg"], inventory["reserved_kg"]) == (1000, 25, 25)


def test_an_order_for_an_estimate_buys_its_total(driver):
    estimate = driver.api("POST", "/api/v1/estimates",
                         json={"kind": "trip", "activities": [{"type": "rail", "distance_km": 100}]})
    assert estimate.status_code == 201, estimate.text
    total_kg = estimate.json()["total_kg"]
    assert total_kg > 0
    project = driver.projects()[0]
    order = driver.place_and_pay_order(project["id"], participant={"id": f"e2e-est-{uuid.uuid4().hex[:6]}",
                                                                   "display_name": "Rail Rider"},
                                       estimate_id=estimate.json()["id"])
    assert order["quantity_kg"] == math.ceil(total_kg)
    assert order["amount_fen"] == math.ceil(order["quantity_kg"] * project["price_fen_per_tonne"] / 1000)
    done = driver.wait_completed(order["id"])
    retirement = done["retirement"]
    assert retirement["serial_last"] - retirement["serial_first"] + 1 == order["quantity_kg"]


# --- every message twice ---------------------------------------------------------------

DELIVERED_TWICE = 6   # orders, of two participants (one with an organisation, one without)


def test_every_pipeline_message_delivered_twice_has_one_effect(stack, driver):
    """Each of the four pipeline messages of every order of a burst sent again by name, as an
    at-least-once broker may deliver them: nothing anyone can observe changes, and every
    order is still completed exactly once."""
    project = driver.project("CDCER-XJ-PV")
    participants = [driver.new_participant("e2e-twice", display_name="重复 Twice", organization="At-Least-Once Ltd"),
                    driver.new_participant("e2e-twice", display_name="重复 Twice Alone")]
    placed = driver.place_orders(project["id"], DELIVERED_TWICE, lambda i: participants[i % 2],
                                 kg=lambda i: 11 + i, scene=SCENE)
    placed = {order_id: order["quantity_kg"] for order_id, order in placed.items()}
    driver.pay_all(placed)
    result = outcome(driver, stack.var_dir, "delivered twice: first delivery", placed, project["id"])
    assert not result.lost
    participant_of = {o: result.orders[o]["participant"]["id"] for o in placed}
    ids = [driver.participant_id(p["id"]) for p in participants]  # as the platform assigned them
    kg_of = {p: sum(kg for o, kg in placed.items() if participant_of[o] == p) for p in ids}
    broker = redis.Redis.from_url(stack.redis_url)
    driver.wait_for(lambda: settled(broker, placed), timeout=30, what="the first deliveries to finish")
    before = {o: observable_state(driver, stack.var_dir, o, participant_of[o], SCENE) for o in placed}
    for state in before.values():
        assert len(state["ledger_entries"]) == 1 and len(state["certificates"]) == 1
        participant = state["order"]["participant"]["id"]
        assert state["ranking_kg"] == {"scene": kg_of[participant], "all": kg_of[participant]}

    messages = [message for order in result.orders.values() for message in pipeline_messages(order).items()]
    task_ids = publish(stack.redis_url, messages)

    def every_duplicate_ran():  # the workers log each task's outcome with its id
        log = stack.worker_logs()
        return all(f"{name}[{task_id}] succeeded" in log for (name, _), task_id in zip(messages, task_ids))
    driver.wait_for(every_duplicate_ran, timeout=60, what="every duplicate to run")
    # ... and what they caused: a second render announces the certificate again.
    driver.wait_for(lambda: settled(broker, placed), timeout=30, what="the follow-ups to be consumed")
    broker.close()

    after = {o: observable_state(driver, stack.var_dir, o, participant_of[o], SCENE) for o in placed}
    changed = [o for o in placed if after[o] != before[o]]
    print(f"\n[delivered twice] placed={len(placed)} completed={len(result.completed)} "
          f"duplicated={len(changed)} lost={len(result.lost)} ({len(task_ids)} messages sent again)")
    assert after == before
    assert all(state["order"]["status"] == "completed" for state in after.values())
    assert_exactly_once(driver, outcome(driver, stack.var_dir, "delivered twice: after", placed, project["id"]),
                        placed, kg_of)
