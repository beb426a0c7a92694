"""Rankings with the real workers: a redelivered ``ranking.record`` counts once, and
``ranking.revoke`` takes an order off every board it is on, once (issue 6).

Orders go through the gateway as a guest's would; the duplicate and revoke messages are
sent by name to the stack's Redis, as another service would send them. The test waits
for the ranking worker's own report of each task (Celery task events), so "nothing
changed" is checked after the worker has actually handled the message.
"""
from __future__ import annotations

import ast
import threading
import time
import uuid

import celery
import pytest

from diandian_common.celery_app import queue_for
from tests.outcomes import SCENE

pytestmark = pytest.mark.integration

PERIODS = ("all", "day", "week", "month")
SCOPES = (None, SCENE)


class WorkerReports:
    """Outcomes of tasks as the workers report them (task-succeeded / task-failed events)."""

    def __init__(self, app: celery.Celery):
        self.app = app
        self.outcomes: dict[str, dict] = {}
        self.listening = threading.Event()
        self.changed = threading.Condition()
        self.receiver = None
        self.thread = threading.Thread(target=self._listen, daemon=True)

    def _on_event(self, event: dict) -> None:
        # Workers answer the receiver's wake-up with a heartbeat: from then on nothing is missed.
        if event["type"] == "worker-heartbeat":
            self.listening.set()
        elif event["type"] in ("task-succeeded", "task-failed"):
            with self.changed:
                self.outcomes[event["uuid"]] = event
                self.changed.notify_all()

    def _listen(self) -> None:
        with self.app.connection_for_read() as connection:
            self.receiver = self.app.events.Receiver(connection, handlers={"*": self._on_event})
            self.receiver.capture(limit=None, timeout=None, wakeup=True)

    def __enter__(self) -> "WorkerReports":
        self.thread.start()
        assert self.listening.wait(30), "no worker heartbeat on the stack's event bus"
        return self

    def __exit__(self, *_exc) -> None:
        # The receiver checks should_stop at least once a second; waiting for it keeps its
        # connection from outliving the test (and the stack).
        self.receiver.should_stop = True
        self.thread.join(timeout=10)

    def send(self, task: str, payload: dict, timeout: float = 60) -> dict:
        """Send ``task`` to its queue and return what the worker's run of it returned."""
        task_id = self.app.send_task(task, args=[payload], queue=queue_for(task)).id
        deadline = time.monotonic() + timeout
        with self.changed:
            while task_id not in self.outcomes:
                assert self.changed.wait(max(0.0, deadline - time.monotonic())), f"no report of {task} {payload}"
        event = self.outcomes[task_id]
        assert event["type"] == "task-succeeded", event
        return ast.literal_eval(event["result"])


@pytest.fixture
def workers(stack, monkeypatch):
    # The root conftest points CELERY_BROKER_URL at memory:// for in-process tests, and
    # Celery lets that variable override the broker given to the app.
    monkeypatch.setenv("CELERY_BROKER_URL", stack.redis_url)
    app = celery.Celery("ranking-e2e", broker=stack.redis_url)
    with WorkerReports(app) as reports:
        yield reports


@pytest.fixture(scope="module")
def ranked_orders(driver):
    """Two completed orders of two new guests of one new organisation, both on the boards."""
    project = driver.projects()[0]
    organization = f"Ranking E2E {uuid.uuid4().hex[:8]}"
    placed = []
    for kg in (21, 34):
        participant = {"id": f"rank-e2e-{uuid.uuid4().hex[:8]}", "display_name": f"Guest {kg}",
                       "organization": organization}
        placed.append((driver.place_and_pay_order(project["id"], kg, participant, scene=SCENE), participant))
    ranked = []
    for order, participant in placed:
        done = driver.wait_completed(order["id"])
        driver.wait_for(lambda: standing(driver, participant["id"], SCENE, "all"), timeout=30, what="ranked")
        ranked.append({"v": 1, "order_id": done["id"], "participant_id": driver.participant_id(participant["id"]),
                       "display_name": participant["display_name"], "organization": organization,
                       "scene": SCENE, "quantity_kg": done["quantity_kg"],
                       "occurred_at": done["retirement"]["retired_at"]})
    return ranked


def standing(driver, participant_id: str, scene: str | None, period: str) -> dict | None:
    return driver.standing(participant_id, expect=(200, 404), scene=scene or "", period=period)


def kg_everywhere(driver, payload: dict) -> dict:
    """The order's participant's and organisation's kilograms on each of their eight boards."""
    kg = {}
    for scene in SCOPES:
        for period in PERIODS:
            mine = standing(driver, payload["participant_id"], scene, period)
            kg[("individual", scene, period)] = mine and mine["kg"]
            board = driver.api("GET", "/api/v1/rankings", params={
                "board": "organization", "scene": scene or "", "period": period, "limit": 100}).json()
            kg[("organization", scene, period)] = next(
                (item["kg"] for item in board["items"] if item["display_name"] == payload["organization"]), None)
    return kg


def test_a_redelivered_record_counts_once(driver, workers, ranked_orders):
    payload = ranked_orders[0]
    before = kg_everywhere(driver, payload)
    assert before == {**{("individual", s, p): payload["quantity_kg"] for s in SCOPES for p in PERIODS},
                      **{("organization", s, p): 55 for s in SCOPES for p in PERIODS}}
    assert workers.send("ranking.record", payload) == {"order_id": payload["order_id"], "stored": False,
                                                       "boards": "already"}
    assert kg_everywhere(driver, payload) == before


def test_revoke_takes_the_order_off_every_board_once(driver, workers, ranked_orders):
    revoked, kept = ranked_orders
    order = {"v": 1, "order_id": revoked["order_id"]}
    assert workers.send("ranking.revoke", order) == {"order_id": revoked["order_id"], "stored": True,
                                                      "boards": "applied"}
    # the guest had only this order: gone from every board; the organisation keeps the other order's kg
    gone = kg_everywhere(driver, revoked)
    assert gone == {**{("individual", s, p): None for s in SCOPES for p in PERIODS},
                    **{("organization", s, p): kept["quantity_kg"] for s in SCOPES for p in PERIODS}}

    assert workers.send("ranking.revoke", order)["boards"] == "already"
    assert workers.send("ranking.record", revoked)["boards"] == "skipped"   # a late redelivery stays revoked
    assert kg_everywhere(driver, revoked) == gone
    assert standing(driver, kept["participant_id"], SCENE, "week")["kg"] == kept["quantity_kg"]
