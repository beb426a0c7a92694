"""Deliveries: signed, retried on schedule, logged, sent once, re-sent by hand; the sender's guards."""
from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from diandian_common.timestamps import as_utc, utcnow
from diandian_common.uow import UnitOfWork
from orders.models import WebhookDelivery
from orders.payments.domain import signatures
from orders.webhooks import sender as webhook_sender
from orders.webhooks import service as webhooks
from orders.webhooks.tests.support import (
    WANG,
    deliver,
    deliveries,
    make_due,
    register,
    retry_now,
    sender_settings,
)


def test_a_delivery_is_signed_with_the_endpoints_secret(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    order = driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, _type, _status, _attempts)] = deliveries(database)
    assert deliver(delivery_id) == "succeeded"
    [request] = receiver.requests
    assert request["path"] == "/hooks/diandian"
    header = request["headers"]["Diandian-Signature"]
    assert signatures.verify(endpoint["secret"], header, request["raw"], time.time(), 300)
    with pytest.raises(signatures.SignatureError):
        signatures.verify("whsec_someone_else", header, request["raw"], time.time(), 300)
    body = json.loads(request["raw"])
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["id"].startswith("evt_") and body["type"] == "order.paid" and body["data"]["id"] == order["id"]
    assert request["headers"]["Diandian-Event-Id"] == body["id"]
    assert request["headers"]["Content-Type"] == "application/json"
    assert deliver(delivery_id) is None  # delivered: a second message sends nothing
    assert len(receiver.requests) == 1


def test_a_failed_attempt_is_retried_on_schedule_and_logged(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    receiver.statuses = [503]
    before = utcnow()
    assert deliver(delivery_id) == "pending"
    with UnitOfWork(database) as uow:
        session = uow.session
        delivery = session.get(WebhookDelivery, delivery_id)
        wait = (as_utc(delivery.next_attempt_at) - before).total_seconds()
        assert 1 <= wait < 2 and delivery.failures == 1 and delivery.last_status_code == 503
    assert deliver(delivery_id) is None  # a duplicate message before the retry is due: nothing sent
    with UnitOfWork(database) as uow:
        session = uow.session
        assert webhooks.dispatch_due(uow, utcnow(), webhooks.settings()) == 0  # not due yet
    make_due(database, delivery_id)
    with UnitOfWork(database) as uow:
        session = uow.session
        assert webhooks.dispatch_due(uow, utcnow(), webhooks.settings()) == 1
    with UnitOfWork(database) as uow:
        session = uow.session  # queued: not queued again while its message is on the way
        assert webhooks.dispatch_due(uow, utcnow(), webhooks.settings()) == 0
    assert deliver(delivery_id) == "succeeded"
    bodies = [r["raw"] for r in receiver.requests]
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the same event, byte for byte
    page = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=operator).get_json()
    [shown] = page["items"]
    assert (shown["status"], shown["attempts"], shown["last_status_code"]) == ("succeeded", 2, 200)
    assert [(a["attempt"], a["status_code"], a["error"], a["succeeded"]) for a in shown["log"]] == \
        [(1, 503, "HTTP 503", False), (2, 200, None, True)]
    assert all(a["duration_ms"] >= 0 and a["started_at"] for a in shown["log"])


def test_a_delivery_fails_for_good_after_the_last_attempt(client, database, operator, local_webhooks, receiver, driver):
    register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    receiver.statuses = [500, 500, 500]
    assert deliver(delivery_id) == "pending"
    retry_now(database, delivery_id)
    assert deliver(delivery_id) == "pending"
    retry_now(database, delivery_id)
    assert deliver(delivery_id) == "failed"  # schedule "1,2": three attempts
    with UnitOfWork(database) as uow:
        session = uow.session
        assert session.get(WebhookDelivery, delivery_id).next_attempt_at is None
        assert webhooks.dispatch_due(uow, utcnow() + timedelta(days=2), webhooks.settings()) == 0
    assert len(receiver.requests) == 3


def test_a_timeout_is_a_failed_attempt(client, database, operator, local_webhooks, receiver, monkeypatch, driver):
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "0.3")
    register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    receiver.delay_s = 1.0
    assert deliver(delivery_id) == "pending"
    with UnitOfWork(database) as uow:
        session = uow.session
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery.last_status_code is None and "timed out" in delivery.last_error.lower()
        assert delivery.log[0].duration_ms < 1000


def test_redirects_are_not_followed(client, database, operator, local_webhooks, receiver, driver):
    register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    receiver.statuses = [302]
    assert deliver(delivery_id) == "pending"
    with UnitOfWork(database) as uow:
        session = uow.session
        assert "redirects are not followed" in session.get(WebhookDelivery, delivery_id).last_error
    assert len(receiver.requests) == 1


def test_a_delivery_being_sent_is_not_sent_twice(client, database, operator, local_webhooks, receiver, driver):
    register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    now, current = utcnow(), webhooks.settings()
    with UnitOfWork(database) as uow:
        first = webhooks.claim(uow, delivery_id, now, current)
    with UnitOfWork(database) as uow:
        assert webhooks.claim(uow, delivery_id, now, current) is None  # a redelivered message
        assert webhooks.dispatch_due(uow, now + timedelta(seconds=1), current) == 0
    assert first.attempt == 1
    # the worker died mid-send: once the lease is over, the delivery is sent again (a retry)
    with UnitOfWork(database) as uow:
        later = now + current.lease + timedelta(seconds=1)
        assert webhooks.dispatch_due(uow, later, current) == 1
        assert webhooks.claim(uow, delivery_id, later, current).attempt == 2


def test_resend_by_hand(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    deliver(delivery_id)
    resent = client.post(f"/api/v1/webhooks/{endpoint['id']}/deliveries/{delivery_id}/resend", headers=operator)
    assert resent.status_code == 202 and resent.get_json()["status"] == "pending"
    assert deliver(delivery_id) == "succeeded"
    assert [json.loads(r["raw"])["id"] for r in receiver.requests] == [receiver.events()[0]["id"]] * 2
    other = register(client, operator, receiver.url, events=["order.paid"])
    assert client.post(f"/api/v1/webhooks/{other['id']}/deliveries/{delivery_id}/resend",
                       headers=operator).status_code == 404
    assert client.post(f"/api/v1/webhooks/{endpoint['id']}/deliveries/999999/resend",
                       headers=operator).status_code == 404
    client.patch(f"/api/v1/webhooks/{endpoint['id']}", headers=operator, json={"active": False})
    refused = client.post(f"/api/v1/webhooks/{endpoint['id']}/deliveries/{delivery_id}/resend", headers=operator)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "endpoint_disabled"


def test_a_disabled_endpoint_waits(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    client.patch(f"/api/v1/webhooks/{endpoint['id']}", headers=operator, json={"active": False})
    assert deliver(delivery_id) is None
    driver.place_and_pay_order(kg=10, participant=WANG)
    assert len(deliveries(database)) == 1  # no new events while disabled
    client.patch(f"/api/v1/webhooks/{endpoint['id']}", headers=operator, json={"active": True})
    with UnitOfWork(database) as uow:
        later = utcnow() + webhooks.settings().lease + timedelta(seconds=1)
        assert webhooks.dispatch_due(uow, later, webhooks.settings()) == 1
    assert deliver(delivery_id) == "succeeded"


def test_deleting_an_endpoint_drops_its_deliveries(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    deliver(delivery_id)
    client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=operator)
    assert deliveries(database) == [] and deliver(delivery_id) is None


def test_deliveries_are_listed_newest_first_and_filtered(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    for _ in range(3):
        driver.place_and_pay_order(kg=10, participant=WANG)
    ids = [d[0] for d in deliveries(database)]
    receiver.statuses = [500]
    for delivery_id in ids:
        deliver(delivery_id)
    url = f"/api/v1/webhooks/{endpoint['id']}/deliveries"
    first = client.get(f"{url}?limit=2", headers=operator).get_json()
    assert [d["id"] for d in first["items"]] == ids[::-1][:2] and first["next_after"] == ids[1]
    rest = client.get(f"{url}?limit=2&after={first['next_after']}", headers=operator).get_json()
    assert [d["id"] for d in rest["items"]] == [ids[0]] and rest["next_after"] is None
    pending = client.get(f"{url}?status=pending", headers=operator).get_json()["items"]
    assert [d["id"] for d in pending] == [ids[0]]
    assert client.get(f"{url}?event_type=order.completed", headers=operator).get_json()["items"] == []
    assert client.get(f"{url}?status=lost", headers=operator).status_code == 422
    assert client.get("/api/v1/webhooks/whk_nope/deliveries", headers=operator).status_code == 404
    assert client.get(url).status_code == 401


def test_loopback_is_refused_unless_allowed(receiver):
    outcome = webhook_sender.post(receiver.url, b"{}", {}, sender_settings())
    assert outcome.status_code is None and "refused" in outcome.error and "loopback" in outcome.error
    assert receiver.requests == []
    allowed = sender_settings(allowed_networks=webhooks.rules.parse_networks("127.0.0.1/32"))
    assert webhook_sender.post(receiver.url, b"{}", {}, allowed).status_code == 200


def test_http_is_refused_unless_allowed(receiver):
    outcome = webhook_sender.post(receiver.url, b"{}", {}, sender_settings(allow_http=False))
    assert "refused" in outcome.error and "https" in outcome.error and receiver.requests == []


def test_every_address_of_the_host_is_checked(receiver):
    """A name with one public and one private address is refused: the client might
    otherwise connect to either."""
    resolver = lambda host, port: ["93.184.215.14", "127.0.0.1"]  # noqa: E731
    allowed_public_only = sender_settings()
    outcome = webhook_sender.post(f"http://hooks.example:{receiver.port}/x", b"{}", {}, allowed_public_only,
                                  resolver=resolver)
    assert "127.0.0.1" in outcome.error and "loopback" in outcome.error and receiver.requests == []


def test_the_connection_goes_to_the_checked_address(receiver):
    """DNS rebinding: the name is resolved once, checked, and that address is used; the
    request still names the host."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])  # a second lookup would get another answer
    settings = sender_settings(allowed_networks=webhooks.rules.parse_networks("127.0.0.0/8"))
    outcome = webhook_sender.post(f"http://hooks.example:{receiver.port}/x", b"{}", {}, settings,
                                  resolver=lambda host, port: next(answers))
    assert outcome.status_code == 200, outcome.error
    assert receiver.requests[0]["headers"]["Host"] == f"hooks.example:{receiver.port}"


def test_an_unresolvable_host_is_a_failed_attempt():
    outcome = webhook_sender.post("https://does-not-exist.invalid/x", b"{}", {}, sender_settings())
    assert outcome.status_code is None and "cannot resolve" in outcome.error


def test_a_closed_port_is_a_failed_attempt():
    from diandian_common.testing import free_port
    settings = sender_settings(allowed_networks=webhooks.rules.parse_networks("127.0.0.0/8"))
    outcome = webhook_sender.post(f"http://127.0.0.1:{free_port()}/x", b"{}", {}, settings)
    assert outcome.status_code is None and "Connection" in outcome.error
