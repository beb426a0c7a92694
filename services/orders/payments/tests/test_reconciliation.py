"""Nothing lost between us and the provider (#18), against the local WeChat Pay and Alipay
emulator (payment_emulator) over real HTTP: a lost notification is found by the query, an
expired order's trades are closed before it is cancelled (paid meanwhile, it is confirmed
instead), and refunds are confirmed by the provider's notification or by the query."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from diandian_common.testing import GuestClient, wait_for
from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork
from orders import tasks
from orders.models import Order, OutboxMessage, Refund
from orders.ordering import service as ordering
from payment_emulator.tests.helpers import free_port

from .emulated import Emulated, Emulator, orders_on_a_port

GUEST = "p_reconciled"


@pytest.fixture
def orders(emulator, tmp_path, monkeypatch):
    """Both providers; every unpaid order is old enough to be queried."""
    with orders_on_a_port(emulator, tmp_path, monkeypatch, GUEST, PAYMENT_QUERY_AFTER_SECONDS="0") as emulated:
        yield emulated.app


control = Emulator.control


def place(app, kg=12) -> dict:
    return Emulated(app, None, GUEST).place(kg, display_name="李雷")


def checkout(app, order_id, **body) -> dict:
    opened = Emulated(app, None, GUEST).checkout(order_id, **body)
    assert opened.status_code == 200, opened.get_json()
    return opened.get_json()


def view(app, order_id) -> dict:
    """The order as its guest sees it (with its refund)."""
    return GuestClient(app.test_client(), GUEST).get(f"/api/v1/orders/{order_id}").get_json()


def status(app, order_id) -> str:
    return view(app, order_id)["status"]


def window_passed(app, order_id, ago=timedelta(seconds=1)) -> None:
    with UnitOfWork(app.extensions["db"]) as uow:
        uow.session.get(Order, order_id).expires_at = utcnow() - ago


def trade(emulator, provider, order_id) -> dict:
    return control(emulator, "GET", f"trades/{provider}/{order_id}").json()


@pytest.mark.parametrize("provider, method", [("wechatpay", "native"), ("alipay", "qr")])
def test_a_lost_notification_is_recovered_by_the_query(orders, emulator, monkeypatch, provider, method):
    order = place(orders)
    checkout(orders, order["id"], method=method, provider=provider)
    monkeypatch.setenv("PAYMENT_QUERY_AFTER_SECONDS", "120")
    assert tasks.reconcile_payments() == {}  # young: its notification may still be on the way
    monkeypatch.setenv("PAYMENT_QUERY_AFTER_SECONDS", "0")
    paid = control(emulator, "POST", f"trades/{provider}/{order['id']}/pay", json={"notify": False})
    assert paid.status_code == 200
    assert status(orders, order["id"]) == "pending_payment"  # the notification was lost
    assert tasks.reconcile_payments() == {"paid": 1}
    assert status(orders, order["id"]) == "paid"
    reference = paid.json().get("transaction_id") or paid.json().get("trade_no")
    with UnitOfWork(orders.extensions["db"]) as uow:
        assert uow.session.get(Order, order["id"]).payment_reference == reference
    assert tasks.reconcile_payments() == {}  # paid: not asked again
    # The lost notification arrives after all: a duplicate, answered and changing nothing.
    late = control(emulator, "POST", f"trades/{provider}/{order['id']}/notify").json()
    assert late["attempt"]["status"] in (200, 204), late
    assert status(orders, order["id"]) == "paid"


def test_an_expired_orders_trades_are_closed_at_the_providers_then_it_is_cancelled(orders, emulator):
    order = place(orders)
    checkout(orders, order["id"], method="native", provider="wechatpay")
    checkout(orders, order["id"], method="wap", provider="alipay")
    window_passed(orders, order["id"])
    with UnitOfWork(orders.extensions["db"]) as uow:
        assert ordering.expire_unpaid(uow) == 0  # its trades first
    assert tasks.reconcile_payments() == {"cancelled": 1}
    assert status(orders, order["id"]) == "cancelled"
    assert trade(emulator, "wechatpay", order["id"])["state"] == "CLOSED"
    assert trade(emulator, "alipay", order["id"])["state"] == "TRADE_CLOSED"
    for provider in ("wechatpay", "alipay"):  # nobody can pay for the released credits
        assert control(emulator, "POST", f"trades/{provider}/{order['id']}/pay").status_code == 409
    assert view(orders, order["id"])["refund"] is None


def test_an_order_paid_right_before_its_window_closed_is_confirmed_not_cancelled(orders, emulator):
    order = place(orders)
    checkout(orders, order["id"], method="native", provider="wechatpay")
    control(emulator, "POST", f"trades/wechatpay/{order['id']}/pay", json={"notify": False})
    window_passed(orders, order["id"])
    with UnitOfWork(orders.extensions["db"]) as uow:
        assert ordering.expire_unpaid(uow) == 0
    assert tasks.reconcile_payments() == {"paid": 1}  # the close is refused: it is paid
    assert status(orders, order["id"]) == "paid"
    assert trade(emulator, "wechatpay", order["id"])["state"] == "SUCCESS"


def test_a_provider_that_cannot_be_reached_holds_the_order_until_the_sweep_gives_up(
    orders, emulator, monkeypatch
):
    order = place(orders)
    checkout(orders, order["id"], method="native", provider="wechatpay")
    monkeypatch.setenv("WECHATPAY_API_BASE", f"http://127.0.0.1:{free_port()}")  # nobody listens
    window_passed(orders, order["id"])
    assert tasks.reconcile_payments() == {"left": 1}
    with UnitOfWork(orders.extensions["db"]) as uow:
        assert ordering.expire_unpaid(uow) == 0
    assert status(orders, order["id"]) == "pending_payment"  # its trade might still be paid
    monkeypatch.setenv("PAYMENT_CLOSE_GIVE_UP_SECONDS", "60")
    window_passed(orders, order["id"], ago=timedelta(seconds=61))
    assert tasks.reconcile_payments() == {}  # given up: the sweep's now
    with UnitOfWork(orders.extensions["db"]) as uow:
        assert ordering.expire_unpaid(uow) == 1
    assert status(orders, order["id"]) == "cancelled"


def late_payment_refund(orders, emulator, provider, method) -> tuple[dict, dict]:
    """An order cancelled with its trade still open (the sweep gave up on the provider),
    then paid: its refund booked, and the ``orders.send_refund`` message."""
    order = place(orders)
    checkout(orders, order["id"], method=method, provider=provider)
    with UnitOfWork(orders.extensions["db"]) as uow:
        assert ordering.expire_unpaid(uow, now=utcnow() + timedelta(days=1)) == 1
    assert control(emulator, "POST", f"trades/{provider}/{order['id']}/pay").status_code == 200

    def booked():
        with UnitOfWork(orders.extensions["db"]) as uow:
            return uow.session.scalars(select(Refund.id).where(Refund.order_id == order["id"])).first()

    wait_for(booked, 15, what="the late payment's refund to be booked")
    assert view(orders, order["id"])["refund"]["status"] == "requested"
    with UnitOfWork(orders.extensions["db"]) as uow:
        send = uow.session.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.task_name == "orders.send_refund")
        ).all()[-1]
    return order, send


def refund_of(orders, order_id) -> dict:
    return view(orders, order_id)["refund"]


def test_a_wechat_pay_refund_is_confirmed_by_its_notification(orders, emulator):
    order, send = late_payment_refund(orders, emulator, "wechatpay", "native")
    assert tasks.send_refund(send)  # claim → call WeChat Pay → record
    assert refund_of(orders, order["id"])["status"] in ("processing", "succeeded")
    wait_for(lambda: refund_of(orders, order["id"])["status"] == "succeeded", 15,
             what="REFUND.SUCCESS to confirm the refund")
    assert refund_of(orders, order["id"])["confirmed_at"]
    refunds = trade(emulator, "wechatpay", order["id"])["refunds"]
    assert [(r["refund"], r["status"]) for r in refunds] == [(order["amount_fen"], "SUCCESS")]
    assert tasks.reconcile_payments() == {}  # confirmed: not asked again


def test_a_wechat_pay_refund_whose_notification_is_lost_is_confirmed_by_the_query(
    orders, emulator, monkeypatch
):
    order, send = late_payment_refund(orders, emulator, "wechatpay", "native")
    monkeypatch.setenv("PUBLIC_BASE_URL", f"http://127.0.0.1:{free_port()}")  # its notification is lost
    tasks.send_refund(send)
    assert refund_of(orders, order["id"])["status"] == "processing"
    wait_for(lambda: trade(emulator, "wechatpay", order["id"])["refunds"][0]["status"] == "SUCCESS", 15,
             what="WeChat Pay to finish the refund")
    assert tasks.reconcile_payments() == {"refund_confirmed": 1}
    refund = refund_of(orders, order["id"])
    assert refund["status"] == "succeeded" and refund["confirmed_at"]


def test_an_alipay_refund_is_confirmed_by_its_answer(orders, emulator):
    order, send = late_payment_refund(orders, emulator, "alipay", "wap")
    tasks.send_refund(send)
    refund = refund_of(orders, order["id"])
    assert refund["status"] == "succeeded" and refund["confirmed_at"]
    assert trade(emulator, "alipay", order["id"])["state"] == "TRADE_CLOSED"  # fully refunded
