"""The provider's fee recorded with each payment and ``settlement bill-check`` against the
payment emulator (payment_emulator), over real HTTP: orders are paid through WeChat Pay's
and Alipay's SDKs, the emulator's signed notifications confirm them, and its daily trade
bill (WeChat's backtick CSV, gzip; Alipay's zip of GBK CSV) is downloaded through the SDKs
and compared with what we recorded."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from diandian_common.testing import GuestClient, wait_for
from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork
from orders import tasks
from orders.models import OutboxMessage, SettlementEntry
from orders.ordering import service as ordering
from orders.payments import providers
from orders.payments.tests.emulated import Emulated, Emulator, orders_on_a_port
from orders.settlement.domain import bills
from orders.settlement.domain.rules import provider_fee

from .support import cli

GUEST = "p_bill_payer"
METHODS = {"wechatpay": "native", "alipay": "qr"}


@pytest.fixture
def orders(emulator, tmp_path, monkeypatch):
    """A bill day of the emulator's own: no trades of other tests in it."""
    with orders_on_a_port(emulator, tmp_path, monkeypatch, GUEST) as emulated:
        yield emulated.app


control = Emulator.control


def status(app, order_id) -> str:
    return app.test_client().get(f"/api/v1/orders/{order_id}").get_json()["status"]


def pay(app, emulator, provider, kg, notify=True) -> dict:
    """Place an order, open its trade with ``provider`` and have the emulator's buyer pay it."""
    emulated = Emulated(app, emulator, GUEST)
    order = emulated.place(kg, display_name="韩梅梅")
    opened = emulated.checkout(order["id"], method=METHODS[provider], provider=provider)
    assert opened.status_code == 200, opened.get_json()
    paid = control(emulator, "POST", f"trades/{provider}/{order['id']}/pay", json={"notify": notify})
    assert paid.status_code == 200, paid.text
    if notify:
        wait_for(lambda: status(app, order["id"]) == "paid", 15, what=f"{provider}'s notification")
    return order


def today() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()


def capture_line(app, order_id) -> SettlementEntry:
    with UnitOfWork(app.extensions["db"]) as uow:
        line = uow.session.scalars(select(SettlementEntry).where(SettlementEntry.order_id == order_id)).one()
        uow.session.expunge(line)
        return line


@pytest.mark.parametrize("provider", ["wechatpay", "alipay"])
def test_the_providers_fee_is_recorded_and_the_days_bill_matches(orders, emulator, provider):
    paid = [pay(orders, emulator, provider, kg) for kg in (1000, 2345)]
    for order in paid:
        line = capture_line(orders, order["id"])
        assert (line.provider, line.provider_fee_bps) == (provider, 60)
        assert line.provider_fee_fen == provider_fee(order["amount_fen"], 60) > 0
        assert line.gross_fen == line.provider_fee_fen + line.fee_fen + line.net_fen == order["amount_fen"]

    # The bill as the emulator writes it, downloaded through the SDK and parsed.
    content = providers.provider(provider).trade_bill(datetime.fromisoformat(today()).date())
    parse = bills.parse_wechat_trade_bill if provider == "wechatpay" else bills.parse_alipay_bill
    bill = parse(content)
    assert sorted((r.kind, r.order_id, r.amount_fen, r.fee_fen) for r in bill) == sorted(
        (bills.PAYMENT, o["id"], o["amount_fen"], provider_fee(o["amount_fen"], 60)) for o in paid)

    checked = cli(orders, "settlement", "bill-check", "--provider", provider, "--date", today())
    assert checked.exit_code == 0, checked.output
    assert "2 matched" in checked.output and "bill ok" in checked.output

    # Statements show the provider's fee beside the platform's, still adding up to the fen.
    statements = cli(orders, "settlement", "statements", "--json")
    [item] = json.loads(statements.output)["items"]
    assert item["provider_fee_fen"] == sum(provider_fee(o["amount_fen"], 60) for o in paid)
    assert item["gross_fen"] == item["provider_fee_fen"] + item["fee_fen"] + item["net_fen"]
    verified = cli(orders, "settlement", "verify")
    assert verified.exit_code == 0 and f"provider fees {item['provider_fee_fen']} fen" in verified.output


def test_a_refund_gives_the_fee_back_in_our_journal_as_in_the_bill(orders, emulator):
    """A payment that lands after the order was cancelled is captured and refunded in full:
    the provider gives its fee back, and so does our refund line."""
    guest = GuestClient(orders.test_client(), GUEST, "203.0.113.7")
    project = guest.get("/api/v1/projects").get_json()["items"][0]
    order = guest.post("/api/v1/orders", headers={"Idempotency-Key": uuid.uuid4().hex},
                       json={"project_id": project["id"], "quantity_kg": 1000,
                             "participant": {"display_name": "韩梅梅"}}).get_json()
    assert guest.post(f"/api/v1/orders/{order['id']}/checkout",
                      json={"method": "qr", "provider": "alipay"}).status_code == 200
    with UnitOfWork(orders.extensions["db"]) as uow:
        # Long past its window: cancelled even with the trade still open at Alipay.
        assert ordering.expire_unpaid(uow, now=utcnow() + timedelta(days=7)) == 1
    control(emulator, "POST", f"trades/alipay/{order['id']}/pay")  # the guest paid anyway

    def booked():
        with UnitOfWork(orders.extensions["db"]) as uow:
            return [m.payload for m in uow.session.scalars(
                select(OutboxMessage).where(OutboxMessage.task_name == "orders.send_refund"))]

    wait_for(booked, 15, what="the late payment's refund to be booked")
    tasks.send_refund(booked()[-1])  # Alipay refunds at once
    with UnitOfWork(orders.extensions["db"]) as uow:
        lines = {e.kind: (e.gross_fen, e.provider_fee_fen) for e in uow.session.scalars(
            select(SettlementEntry).where(SettlementEntry.order_id == order["id"]))}
    amount, fee = order["amount_fen"], provider_fee(order["amount_fen"], 60)
    assert fee > 0 and lines == {"capture": (amount, fee), "refund": (-amount, -fee)}
    checked = cli(orders, "settlement", "bill-check", "--provider", "alipay", "--date", today())
    assert checked.exit_code == 0, checked.output
    assert "amount 0 fen, fees 0 fen" in checked.output and "2 matched" in checked.output


def test_differences_with_the_bill_are_reported_and_fail_the_command(orders, emulator, monkeypatch):
    matched = pay(orders, emulator, "wechatpay", 1000)
    lost = pay(orders, emulator, "wechatpay", 1500, notify=False)  # paid, but we never heard of it
    monkeypatch.setenv("PAYMENT_FEE_BPS_WECHATPAY", "100")  # a rate the bill does not charge
    dear = pay(orders, emulator, "wechatpay", 2345)
    assert status(orders, lost["id"]) == "pending_payment"

    checked = cli(orders, "settlement", "bill-check", "--provider", "wechatpay", "--date", today())
    assert checked.exit_code == 1, checked.output
    assert "1 matched" in checked.output and matched["id"] not in checked.output
    assert (f"DIFFERENCE missing_here: payment of order {lost['id']}: {lost['amount_fen']} fen in the "
            "provider's bill") in checked.output
    assert (f"DIFFERENCE fee: payment of order {dear['id']}: provider fee "
            f"{provider_fee(dear['amount_fen'], 100)} fen here, {provider_fee(dear['amount_fen'], 60)} fen "
            "in the bill") in checked.output
    assert "2 differences with the wechatpay bill" in checked.output

    # No Alipay trades that day: no bill, and nothing recorded here either.
    nothing = cli(orders, "settlement", "bill-check", "--provider", "alipay", "--date", today())
    assert nothing.exit_code == 0 and "no bill" in nothing.output


def test_a_day_without_trades_and_a_bad_date(orders, emulator):
    empty = cli(orders, "settlement", "bill-check", "--provider", "wechatpay", "--date", "2026-01-01")
    assert empty.exit_code == 0 and "no bill" in empty.output and "bill ok" in empty.output
    bad = cli(orders, "settlement", "bill-check", "--provider", "wechatpay", "--date", "2026-13-01")
    assert bad.exit_code == 2
