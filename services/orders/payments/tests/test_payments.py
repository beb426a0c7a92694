"""Signed provider webhooks (``POST /api/v1/payments/{provider}/webhook``) with ``testpay``."""
from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from diandian_common.testing import GuestClient
from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork
from orders import records, tasks
from orders.models import OutboxMessage, PaymentEvent, Project, Refund
from orders.ordering import service as ordering
from orders.payments.domain import signatures

SECRET = "whsec_orders_tests"
URL = "/api/v1/payments/testpay/webhook"


GUEST = {"id": "p-1", "display_name": "Guest"}

@pytest.fixture
def testpay(monkeypatch):
    """New orders are paid through testpay, whose webhooks are signed with SECRET."""
    monkeypatch.setenv("PAYMENT_PROVIDER", "testpay")
    monkeypatch.setenv("PAYMENT_WEBHOOK_SECRET_TESTPAY", SECRET)


def event(order, event_id=None, type_="payment.succeeded", **data):
    return {"id": event_id or f"evt_{uuid.uuid4().hex}", "type": type_, "created_at": "2026-01-01T00:00:00Z",
            "data": {"order_id": order["id"], "amount_fen": order["amount_fen"], "currency": order["currency"],
                     "transaction_id": f"tp_{uuid.uuid4().hex[:12]}", **data}}


def deliver(client, body, secret=SECRET, timestamp=None, provider="testpay", header=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = header if header is not None else signatures.header_value(secret, timestamp, raw)
    return client.post(f"/api/v1/payments/{provider}/webhook", data=raw,
                       headers={"Content-Type": "application/json", "Payment-Signature": signature})


def test_orders_name_testpay_as_their_provider(client, testpay, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    assert order["payment"]["provider"] == "testpay"
    sandbox = driver.api("POST", f"/api/v1/orders/{order['id']}/payment", guest=driver.guest_of(order))
    assert sandbox.status_code == 409 and sandbox.json()["error"]["code"] == "not_a_sandbox_order"


def test_a_signed_payment_confirms_the_order(client, database, testpay, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    body = event(order)
    response = deliver(client, body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"event_id": body["id"], "order_id": order["id"], "status": "paid", "action": "paid"}
    view = client.get(f"/api/v1/orders/{order['id']}").get_json()
    assert view["status"] == "paid"
    with UnitOfWork(database) as uow:
        session = uow.session
        retire = session.scalars(select(OutboxMessage).where(OutboxMessage.task_name == "orders.retire_credits")).all()
        assert [m.payload["order_id"] for m in retire] == [order["id"]]
        event_row = session.scalars(select(PaymentEvent)).one()
        assert (event_row.provider, event_row.event_id, event_row.reference) == \
            ("testpay", body["id"], body["data"]["transaction_id"])


def test_the_same_event_twice_changes_nothing(client, database, testpay, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    body = event(order)
    first = deliver(client, body)
    again = deliver(client, body)  # the provider retries, with a new timestamp
    assert again.status_code == 200 and again.get_json() == first.get_json()
    with UnitOfWork(database) as uow:
        session = uow.session
        assert session.scalars(select(func.count()).select_from(PaymentEvent)).one() == 1
        assert session.scalars(select(func.count()).select_from(OutboxMessage)).one() == 1


def test_another_event_for_a_paid_order_changes_nothing(client, database, testpay, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    deliver(client, event(order))
    second = deliver(client, event(order))
    assert second.status_code == 200 and second.get_json()["action"] == "already_paid"
    with UnitOfWork(database) as uow:
        session = uow.session
        assert session.scalars(select(func.count()).select_from(OutboxMessage)).one() == 1


def test_an_event_id_reused_with_another_body_is_refused(client, testpay, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    body = event(order)
    deliver(client, body)
    altered = {**body, "data": {**body["data"], "transaction_id": "tp_other"}}
    response = deliver(client, altered)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "event_id_reused"


@pytest.mark.parametrize("change", [{"amount_fen": 1}, {"currency": "USD"}])
def test_an_amount_or_currency_that_differs_is_refused(client, testpay, change, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    response = deliver(client, event(order, **change))
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "amount_mismatch"
    assert client.get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "pending_payment"


def test_a_bad_signature_is_refused_and_changes_nothing(client, testpay, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    body = event(order)
    missing = deliver(client, body, header="")
    assert missing.status_code == 401 and missing.get_json()["error"]["code"] == "signature_missing"
    wrong = deliver(client, body, secret="not the secret")
    assert wrong.status_code == 403 and wrong.get_json()["error"]["code"] == "invalid_signature"
    raw = json.dumps(body).encode()
    signed_for_other_body = signatures.header_value(SECRET, int(time.time()), raw + b" ")
    tampered = deliver(client, raw, header=signed_for_other_body)
    assert tampered.status_code == 403
    assert client.get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "pending_payment"


def test_stale_calls_are_refused(client, testpay, monkeypatch, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    stale = deliver(client, event(order), timestamp=int(time.time()) - 301)
    assert stale.status_code == 403 and stale.get_json()["error"]["code"] == "stale_signature"
    future = deliver(client, event(order), timestamp=int(time.time()) + 301)
    assert future.status_code == 403
    monkeypatch.setenv("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", "900")
    assert deliver(client, event(order), timestamp=int(time.time()) - 600).status_code == 200


def test_unknown_or_unconfigured_providers_are_404(client, testpay, monkeypatch, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    for provider in ("wechatpay", "sandbox", "nope"):
        response = deliver(client, event(order), provider=provider)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    monkeypatch.delenv("PAYMENT_WEBHOOK_SECRET_TESTPAY")
    assert deliver(client, event(order)).status_code == 404


def test_unknown_orders_and_unreadable_bodies(client, testpay, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    unknown = deliver(client, event({**order, "id": "ord_nope"}))
    assert unknown.status_code == 404
    not_json = deliver(client, b"{not json")
    assert not_json.status_code == 422 and "_body" in not_json.get_json()["error"]["fields"]
    incomplete = {"id": "evt_1", "type": "payment.succeeded", "data": {"order_id": order["id"]}}
    response = deliver(client, incomplete)
    assert response.status_code == 422
    assert {"amount_fen", "currency", "transaction_id"} <= set(response.get_json()["error"]["fields"]["data"])
    assert deliver(client, [1, 2]).status_code == 422
    assert deliver(client, b"[" * 100_000).status_code == 422


def test_a_sandbox_order_cannot_be_paid_by_testpay(client, monkeypatch, driver):
    order = driver.place_order(kg=10, participant=GUEST)  # PAYMENT_PROVIDER is sandbox
    monkeypatch.setenv("PAYMENT_WEBHOOK_SECRET_TESTPAY", SECRET)
    response = deliver(client, event(order))
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "provider_mismatch"


def test_other_events_are_acknowledged_not_acted_on(client, testpay, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    response = deliver(client, event(order, type_="payment.failed"))
    assert response.status_code == 200 and response.get_json()["action"] == "ignored"
    assert client.get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "pending_payment"


def test_a_late_payment_before_the_sweep_is_delivered(client, database, testpay, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    with UnitOfWork(database) as uow:
        session = uow.session
        records.lock_order(session, order["id"]).expires_at = utcnow() - timedelta(minutes=1)
    response = deliver(client, event(order))
    assert response.status_code == 200 and response.get_json()["status"] == "paid"


def test_a_payment_after_cancellation_is_refunded(client, database, testpay, driver):
    order = driver.place_order(kg=20, participant=GUEST)
    with UnitOfWork(database) as uow:
        session = uow.session
        ordering.expire_unpaid(uow, now=utcnow() + timedelta(hours=1))
    body = event(order)
    response = deliver(client, body)
    assert response.status_code == 200
    assert response.get_json() == {"event_id": body["id"], "order_id": order["id"], "status": "cancelled",
                                   "action": "refunded"}
    project_id = client.get(f"/api/v1/orders/{order['id']}").get_json()["project"]["id"]
    with UnitOfWork(database) as uow:
        session = uow.session
        refund = session.scalars(select(Refund)).one()
        assert (refund.order_id, refund.amount_fen, refund.provider) == (order["id"], order["amount_fen"], "testpay")
        assert refund.provider_reference is None  # booked; the provider is called outside the transaction
        assert session.get(Project, project_id).reserved_kg == 0  # the credits stay released
        sends = [m.payload for m in session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "orders.send_refund"))]
    assert sends == [{"v": 1, "refund_id": refund.id}]
    reference = tasks.send_refund(sends[0])  # claim → call the provider → record
    assert reference.startswith(f"testpay-refund-{refund.id}-")
    assert tasks.send_refund(sends[0]) is None  # sent already: the provider is not asked again
    with UnitOfWork(database) as uow:
        assert uow.session.get(Refund, refund.id).provider_reference == reference
    again = deliver(client, event(order))  # yet another capture: no second automatic refund
    assert again.status_code == 200 and again.get_json()["action"] == "manual_refund"
    with UnitOfWork(database) as uow:
        session = uow.session
        assert session.scalars(select(func.count()).select_from(Refund)).one() == 1


def test_new_orders_are_refused_when_the_provider_cannot_take_payments(client, monkeypatch):
    monkeypatch.setenv("PAYMENT_PROVIDER", "testpay")  # but no secret
    project = client.get("/api/v1/projects").get_json()["items"][0]
    guest = GuestClient(client, "p")
    response = guest.post("/api/v1/orders", headers={"Idempotency-Key": "k"}, json={
        "project_id": project["id"], "quantity_kg": 1, "participant": {"display_name": "P"}})
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "payment_unavailable"
    monkeypatch.setenv("PAYMENT_PROVIDER", "nopay")
    assert guest.post("/api/v1/orders", headers={"Idempotency-Key": "k2"}, json={
        "project_id": project["id"], "quantity_kg": 1, "participant": {"display_name": "P"}}).status_code == 503


def test_a_notification_with_a_5000_digit_amount_changes_nothing(client, database, testpay, driver):
    order = driver.place_order(kg=10, participant=GUEST)
    raw = ('{"id": "evt_big", "type": "payment.succeeded", "data": {"order_id": "%s", "amount_fen": %s, '
           '"currency": "CNY", "transaction_id": "tp_1"}}' % (order["id"], "9" * 5000)).encode()
    response = deliver(client, raw)
    assert response.status_code == 422
    assert driver.order(order["id"])["status"] == "pending_payment"
