"""Outbound webhooks against a real (temporary) database and a real HTTP receiver on
127.0.0.1: endpoints, events written with the state change, signed deliveries, retries,
the log, re-sending, and the address checks."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from diandian_common.uow import UnitOfWork
from orders import tasks
from orders.ledger import service as ledger_service
from orders.models import OutboxMessage, WebhookDelivery, WebhookEvent
from orders.webhooks import service as webhooks
from orders.webhooks.tests.support import (
    WANG,
    deliver,
    deliveries,
    register,
)


def test_an_endpoint_gets_its_secret_once(client, operator, local_webhooks, receiver):
    created = register(client, operator, receiver.url, events=["order.paid"], description="venue screen")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert (created["url"], created["events"], created["scene"], created["active"]) == \
        (receiver.url, ["order.paid"], None, True)
    listed = client.get("/api/v1/webhooks", headers=operator).get_json()["items"]
    assert [e["id"] for e in listed] == [created["id"]] and "secret" not in listed[0]
    assert "secret" not in client.get(f"/api/v1/webhooks/{created['id']}", headers=operator).get_json()
    assert client.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["order.paid"]}).status_code == 401


@pytest.mark.parametrize("body, field", [
    ({"url": "http://hooks.example.com/x", "events": ["order.paid"]}, "url"),   # http not allowed here
    ({"url": "https://10.0.0.5/x", "events": ["order.paid"]}, "url"),
    ({"url": "https://[::1]/x", "events": ["order.paid"]}, "url"),
    ({"url": "https://169.254.169.254/latest/meta-data", "events": ["order.paid"]}, "url"),
    ({"url": "https://u:p@hooks.example.com/x", "events": ["order.paid"]}, "url"),
    ({"url": "not a url", "events": ["order.paid"]}, "url"),
    ({"url": "https://hooks.example.com/" + "x" * 500, "events": ["order.paid"]}, "url"),
    ({"url": "https://hooks.example.com/x", "events": []}, "events"),
    ({"url": "https://hooks.example.com/x", "events": ["order.refunded"]}, "events"),
    ({"url": "https://hooks.example.com/x", "events": "order.paid"}, "events"),
    ({"url": "https://hooks.example.com/x"}, "events"),
    ({"url": "https://hooks.example.com/x", "events": ["order.paid"], "scene": "Not A Slug"}, "scene"),
    ({"url": "https://hooks.example.com/x", "events": ["order.paid"], "scene": "nowhere"}, "scene"),
    ({"url": "https://hooks.example.com/x", "events": ["order.paid"], "secret": "mine"}, "secret"),
])
def test_endpoints_are_validated(client, operator, scenes, body, field):
    response = client.post("/api/v1/webhooks", headers=operator, json=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]


def test_https_endpoints_and_scenes(client, operator, scenes):
    created = register(client, operator, "https://hooks.example.com/diandian", events=["order.paid"], scene="forum")
    assert created["scene"] == "forum"


def test_disable_enable_and_delete(client, operator, local_webhooks, receiver):
    endpoint = register(client, operator, receiver.url)
    disabled = client.patch(f"/api/v1/webhooks/{endpoint['id']}", headers=operator, json={"active": False})
    assert disabled.status_code == 200 and disabled.get_json()["active"] is False
    assert client.patch(f"/api/v1/webhooks/{endpoint['id']}", headers=operator, json={}).status_code == 422
    assert client.patch(f"/api/v1/webhooks/{endpoint['id']}", headers=operator,
                        json={"url": "ftp://x"}).status_code == 422
    assert client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=operator).status_code == 204
    assert client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=operator).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=operator).status_code == 404


def test_no_endpoint_no_event(client, database, driver):
    driver.place_and_pay_order(kg=10, participant=WANG)
    with UnitOfWork(database) as uow:
        session = uow.session
        assert session.scalars(select(func.count()).select_from(WebhookEvent)).one() == 0


def test_the_event_is_written_with_the_payment(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    order = driver.place_and_pay_order(kg=10, participant=WANG)
    with UnitOfWork(database) as uow:
        session = uow.session
        event = session.scalars(select(WebhookEvent)).one()
        assert (event.type, event.data["id"], event.data["status"]) == ("order.paid", order["id"], "paid")
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert (delivery.endpoint_id, delivery.event_id, delivery.status) == (endpoint["id"], event.id, "pending")
        message = session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "orders.deliver_webhook")).one()
        assert message.payload == {"v": 1, "delivery_id": delivery.id}
    driver.pay(order["id"])  # paying twice: no second event
    assert len(deliveries(database)) == 1


def test_no_event_without_the_payment(client, database, operator, local_webhooks, receiver, monkeypatch, driver):
    register(client, operator, receiver.url, events=["order.paid"])
    order = driver.place_order(kg=10, participant=WANG)

    def broken(*_args, **_kwargs):
        raise RuntimeError("outbox full")

    monkeypatch.setattr(webhooks, "enqueue", broken)
    paying = driver.api("POST", f"/api/v1/orders/{order['id']}/payment", guest=driver.guest_of(order))
    assert paying.status_code == 500
    assert deliveries(database) == []
    assert client.get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "pending_payment"


def test_scene_endpoints_hear_only_their_scene(client, database, operator, local_webhooks, receiver, scenes, driver):
    forum = register(client, operator, receiver.url, events=["order.paid"], scene="forum")
    everything = register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG, scene="forum")
    driver.place_and_pay_order(kg=10, participant=WANG, scene="expo")
    driver.place_and_pay_order(kg=10, participant=WANG)
    with UnitOfWork(database) as uow:
        session = uow.session
        heard = {}
        for d in session.scalars(select(WebhookDelivery)):
            heard.setdefault(d.endpoint_id, []).append(d.event.scene_slug)
    assert heard == {forum["id"]: ["forum"], everything["id"]: ["forum", "expo", None]}


def test_the_whole_life_of_an_order_is_announced(client, database, operator, local_webhooks, receiver, driver):
    register(client, operator, receiver.url)
    order = driver.place_and_pay_order(kg=10, participant=WANG)
    with UnitOfWork(database) as uow:
        ledger_service.retire(uow, order["id"])
    tasks.certificate_issued.run({"v": 1, "order_id": order["id"], "certificate_id": "cert_9", "verify_code": "c9",
                                  "pdf_url": "http://x/c9.pdf", "verify_url": "http://x/v/c9"})
    tasks.certificate_revoked.run({"v": 1, "order_id": order["id"], "certificate_id": "cert_9",
                                   "reason": "issued twice", "refund": True})
    tasks.certificate_revoked.run({"v": 1, "order_id": order["id"], "certificate_id": "cert_9",
                                   "reason": "issued twice", "refund": True})
    for delivery_id, *_ in deliveries(database):
        deliver(delivery_id)
    by_type = {e["type"]: e for e in receiver.events()}
    assert [e["type"] for e in receiver.events()] == ["order.paid", "order.completed", "certificate.issued",
                                                      "certificate.revoked"]
    assert by_type["order.completed"]["data"]["certificate"]["id"] == "cert_9"
    issued = by_type["certificate.issued"]["data"]
    assert (issued["id"], issued["order_id"], issued["verify_url"]) == ("cert_9", order["id"], "http://x/v/c9")
    assert issued["serial_range"].startswith("CDCER-") and issued["quantity_kg"] == 10
    revoked = by_type["certificate.revoked"]["data"]
    assert (revoked["id"], revoked["revocation_reason"]) == ("cert_9", "issued twice")
    assert revoked["refund"]["amount_fen"] == order["amount_fen"] and revoked["order"]["id"] == order["id"]


def test_low_inventory_is_announced_when_an_order_crosses_the_threshold(client, database, operator,
                                                                        local_webhooks, receiver, driver):
    register(client, operator, receiver.url, events=["project.low_inventory"])
    project = client.get("/api/v1/projects").get_json()["items"][0]
    threshold = project["available_kg"] - 15
    client.patch(f"/api/v1/projects/{project['id']}", headers=operator,
                 json={"low_inventory_threshold_kg": threshold})
    driver.place_order(project["id"], 10, WANG)   # still above
    driver.place_order(project["id"], 10, WANG)   # crosses: announced
    driver.place_order(project["id"], 10, WANG)   # already below: not again
    for delivery_id, *_ in deliveries(database):
        deliver(delivery_id)
    [announced] = receiver.events()
    assert announced["type"] == "project.low_inventory"
    assert announced["data"]["project"]["id"] == project["id"]
    assert (announced["data"]["available_kg"], announced["data"]["threshold_kg"]) == (threshold - 5, threshold)


def test_the_global_threshold(client, monkeypatch):
    monkeypatch.setenv("LOW_INVENTORY_THRESHOLD_KG", "1234")
    project = client.get("/api/v1/projects").get_json()["items"][0]
    assert project["low_inventory_threshold_kg"] == 1234
