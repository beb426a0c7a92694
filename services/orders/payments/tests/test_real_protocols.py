"""WeChat Pay and Alipay through their SDKs against the local emulator (payment_emulator),
with real HTTP both ways: the orders service opens the trade, the emulator's buyer pays, and
the emulator's signed notification confirms the order through the webhook."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from diandian_common.testing import GuestClient, wait_for
from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork
from orders import tasks
from orders.models import Order, OutboxMessage, PaymentEvent, Refund
from orders.ordering import service as ordering
from payment_emulator import crypto
from payment_emulator.keys import platform_keys

from .emulated import Emulated, Emulator, orders_on_a_port

GUEST = "p_payer"


@pytest.fixture
def orders(emulator, tmp_path, monkeypatch):
    with orders_on_a_port(emulator, tmp_path, monkeypatch, GUEST) as emulated:
        yield emulated.app


control = Emulator.control


def place(app, kg=12) -> dict:
    placed = Emulated(app, None, GUEST).place(kg)
    assert placed["payment"]["provider"] == "wechatpay"  # the first enabled
    return placed


def checkout(app, order_id, **body):
    return Emulated(app, None, GUEST).checkout(order_id, **body)


def status(app, order_id) -> str:
    return app.test_client().get(f"/api/v1/orders/{order_id}").get_json()["status"]


@pytest.mark.parametrize(
    "provider, method, link",
    [
        ("wechatpay", "native", "code_url"),
        ("wechatpay", "h5", "h5_url"),
        ("alipay", "qr", "qr_code"),
        ("alipay", "wap", "pay_url"),
    ],
)
def test_a_guest_pays_through_the_provider_and_its_notification_confirms_the_order(
    orders, emulator, provider, method, link
):
    order = place(orders)
    opened = checkout(orders, order["id"], method=method, provider=provider)
    assert opened.status_code == 200, opened.get_json()
    body = opened.get_json()
    assert (body["provider"], body["method"]) == (provider, method) and body[link]
    trade = control(emulator, "GET", f"trades/{provider}/{order['id']}").json()
    assert trade["total"] == order["amount_fen"]  # in fen, to the fen
    assert status(orders, order["id"]) == "pending_payment"
    assert control(emulator, "POST", f"trades/{provider}/{order['id']}/pay").status_code == 200
    wait_for(lambda: status(orders, order["id"]) == "paid", 15, what="the notification to confirm the order")
    # The provider's retry (a duplicate) is answered as the first time and changes nothing.
    again = control(emulator, "POST", f"trades/{provider}/{order['id']}/notify").json()
    assert again["attempt"]["status"] in (200, 204), again
    assert status(orders, order["id"]) == "paid"


def test_jsapi_gives_the_signed_parameters_for_wechats_browser(orders, emulator):
    order = place(orders)
    missing = checkout(orders, order["id"], method="jsapi")
    assert missing.status_code == 502 and "openid" in missing.get_json()["error"]["message"]
    opened = checkout(orders, order["id"], method="jsapi", openid="o_demo_guest").get_json()
    parameters = opened["jsapi"]
    assert parameters["package"].startswith("prepay_id=") and parameters["signType"] == "RSA"
    assert parameters["appId"] and parameters["paySign"]


def test_a_forged_notification_changes_nothing(orders, emulator):
    order = place(orders)
    checkout(orders, order["id"], method="native")
    forged = json.dumps({"id": "evt-forged", "event_type": "TRANSACTION.SUCCESS", "resource": {}})
    answer = orders.test_client().post(
        "/api/v1/payments/wechatpay/webhook",
        data=forged,
        headers={
            "Content-Type": "application/json",
            "Wechatpay-Timestamp": "0",
            "Wechatpay-Nonce": "n",
            "Wechatpay-Signature": "c2lnbmF0dXJl",
            "Wechatpay-Serial": "PUB_KEY_ID_X",
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        },
    )
    assert answer.status_code == 403 and answer.get_json()["code"] == "FAIL"
    unsigned = orders.test_client().post(
        "/api/v1/payments/alipay/webhook",
        data="out_trade_no=x&trade_no=y",
        content_type="application/x-www-form-urlencoded",
    )
    assert unsigned.status_code == 401 and unsigned.get_data(as_text=True) == "fail"
    assert status(orders, order["id"]) == "pending_payment"


def test_an_order_is_paid_once_whichever_providers_it_opened(orders, emulator):
    order = place(orders)
    checkout(orders, order["id"], method="native")
    checkout(orders, order["id"], method="qr")
    control(emulator, "POST", f"trades/alipay/{order['id']}/pay")
    wait_for(lambda: status(orders, order["id"]) == "paid", 15, what="paid through Alipay")
    with UnitOfWork(orders.extensions["db"]) as uow:
        assert uow.session.get(Order, order["id"]).payment_provider == "alipay"


def test_a_provider_that_is_not_enabled_or_cannot_pay_by_the_method_is_refused(orders, monkeypatch):
    order = place(orders)
    monkeypatch.setenv("PAYMENT_PROVIDERS", "wechatpay")
    refused = checkout(orders, order["id"], method="qr")
    assert (
        refused.status_code == 422
        and "wechatpay:native" in refused.get_json()["error"]["fields"]["method"][0]
    )
    stranger = GuestClient(orders.test_client(), "p_stranger").post(
        f"/api/v1/orders/{order['id']}/checkout", json={"method": "native"}
    )
    assert stranger.status_code == 403


def test_a_payment_after_the_order_expired_is_refunded_through_the_provider(orders, emulator):
    order = place(orders)
    checkout(orders, order["id"], method="native")
    # The trade could not be closed before the sweep gave up on the provider
    # (PAYMENT_CLOSE_GIVE_UP_SECONDS): the order is cancelled with its trade still open.
    with UnitOfWork(orders.extensions["db"]) as uow:
        assert ordering.expire_unpaid(uow, now=utcnow() + timedelta(days=1)) == 1
    control(emulator, "POST", f"trades/wechatpay/{order['id']}/pay")  # the guest paid anyway

    def booked_refund():
        with UnitOfWork(orders.extensions["db"]) as uow:
            return uow.session.scalars(select(Refund.id).where(Refund.order_id == order["id"])).first()

    wait_for(booked_refund, 15, what="the late payment's refund to be booked")
    with UnitOfWork(orders.extensions["db"]) as uow:
        sends = [
            m.payload
            for m in uow.session.scalars(
                select(OutboxMessage).where(OutboxMessage.task_name == "orders.send_refund")
            )
        ]
    tasks.send_refund(sends[-1])  # claim → call WeChat Pay's refund API → record
    refunds = control(emulator, "GET", f"trades/wechatpay/{order['id']}").json()["refunds"]
    assert [(r["refund"], r["total"]) for r in refunds] == [(order["amount_fen"],) * 2]
    assert status(orders, order["id"]) == "cancelled"


def test_wechat_pay_in_platform_certificate_mode(orders, emulator, monkeypatch):
    # Merchants without a platform public key verify with WeChat Pay's platform certificates.
    monkeypatch.delenv("WECHATPAY_PUBLIC_KEY_FILE")
    monkeypatch.delenv("WECHATPAY_PUBLIC_KEY_ID")
    order = place(orders)
    assert checkout(orders, order["id"], method="native").status_code == 200
    control(emulator, "POST", f"trades/wechatpay/{order['id']}/pay")
    wait_for(lambda: status(orders, order["id"]) == "paid", 15, what="paid, verified by the certificate")


def test_the_provider_that_took_the_money_is_the_orders_and_a_second_one_is_flagged(orders, emulator):
    order = place(orders)
    checkout(orders, order["id"], method="native")
    checkout(orders, order["id"], method="qr")  # the guest last opened Alipay ...
    control(emulator, "POST", f"trades/wechatpay/{order['id']}/pay")  # ... but paid by WeChat Pay
    wait_for(lambda: status(orders, order["id"]) == "paid", 15, what="paid through WeChat Pay")
    with UnitOfWork(orders.extensions["db"]) as uow:
        assert uow.session.get(Order, order["id"]).payment_provider == "wechatpay"
    # Alipay takes a second payment for the same order: flagged for a manual refund, not kept quietly.
    control(emulator, "POST", f"trades/alipay/{order['id']}/pay")

    def second_payment():
        with UnitOfWork(orders.extensions["db"]) as uow:
            events = uow.session.scalars(select(PaymentEvent).where(PaymentEvent.provider == "alipay")).all()
            return [e.response_body["action"] for e in events]

    assert wait_for(second_payment, 15, what="Alipay's notification") == ["manual_refund"]


# --- notifications that are not what they claim ---------------------------------------------

def wechat_notification(emulator, order, *, amount=None, mchid=None, apiv3_key=None, signing_key=None,
                        timestamp=None) -> tuple[dict, str]:
    """A TRANSACTION.SUCCESS notification for ``order`` as WeChat Pay sends it (signed with the
    emulator's platform key, resource encrypted with the merchant's APIv3 key), with one thing
    changed: what an attacker or a confused provider could send."""
    keys = platform_keys(emulator.state_dir)
    env = emulator.env
    resource = {"mchid": mchid or env["WECHATPAY_MCHID"], "appid": env["WECHATPAY_APPID"],
                "out_trade_no": order["id"], "transaction_id": f"42000{uuid.uuid4().int % 10**23:023d}",
                "trade_type": "NATIVE", "trade_state": "SUCCESS", "success_time": "2026-12-05T08:00:00+08:00",
                "amount": {"total": order["amount_fen"] if amount is None else amount, "currency": "CNY"},
                "payer": {"openid": "o_attacker"}}
    body = json.dumps({"id": str(uuid.uuid4()), "create_time": "2026-12-05T08:00:00+08:00",
                       "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource",
                       "summary": "支付成功",
                       "resource": {**crypto.aes_gcm_encrypt(apiv3_key or env["WECHATPAY_APIV3_KEY"],
                                                             json.dumps(resource), "transaction"),
                                    "original_type": "transaction"}})
    stamp, nonce = str(int(time.time()) if timestamp is None else timestamp), uuid.uuid4().hex
    signature = crypto.sign(signing_key or keys.wechat_private, f"{stamp}\n{nonce}\n{body}\n")
    return {"Content-Type": "application/json", "Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature, "Wechatpay-Serial": env["WECHATPAY_PUBLIC_KEY_ID"],
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}, body


@pytest.mark.parametrize("change, status_code, code", [
    ({"amount": 1}, 409, "amount_mismatch"),
    ({"mchid": "1900000001"}, 403, "wrong_merchant"),
    ({"apiv3_key": "k" * 32}, 403, "invalid_signature"),        # re-encrypted with another key
    ({"signing_key": crypto.new_rsa_key()}, 403, "invalid_signature"),  # signed by anyone else
    ({"timestamp": 1_700_000_000}, 403, "stale_signature"),     # a capture replayed much later
])
def test_a_notification_that_is_not_what_it_claims_changes_nothing(orders, emulator, change, status_code,
                                                                    code):
    order = place(orders)
    checkout(orders, order["id"], method="native")
    headers, body = wechat_notification(emulator, order, **change)
    answer = orders.test_client().post("/api/v1/payments/wechatpay/webhook", data=body, headers=headers)
    refusal = answer.get_json()
    assert (answer.status_code, refusal["code"]) == (status_code, "FAIL")
    assert refusal["message"].startswith(code)
    assert status(orders, order["id"]) == "pending_payment"
    # The genuine one, sent as it is, is taken.
    headers, body = wechat_notification(emulator, order)
    taken = orders.test_client().post("/api/v1/payments/wechatpay/webhook", data=body, headers=headers)
    assert taken.status_code == 204
    assert status(orders, order["id"]) == "paid"


def alipay_notification(emulator, order, *, total_amount=None, app_id=None, signing_key=None) -> str:
    """A TRADE_SUCCESS notification for ``order`` as Alipay posts it (RSA2 over the sorted
    parameters with Alipay's key), with one thing changed."""
    form = {"notify_id": uuid.uuid4().hex, "notify_type": "trade_status_sync",
            "notify_time": "2026-12-05 08:00:00", "charset": "utf-8", "version": "1.0",
            "app_id": app_id or emulator.env["ALIPAY_APP_ID"],
            "out_trade_no": order["id"], "trade_no": f"2026120522001{uuid.uuid4().int % 10**15:015d}",
            "trade_status": "TRADE_SUCCESS",
            "total_amount": total_amount or f"{order['amount_fen'] // 100}.{order['amount_fen'] % 100:02d}"}
    message = "&".join(f"{key}={form[key]}" for key in sorted(form))
    key = signing_key or platform_keys(emulator.state_dir).alipay_private
    return urlencode({**form, "sign_type": "RSA2", "sign": crypto.sign(key, message)})


@pytest.mark.parametrize("change, status_code", [
    ({"total_amount": "0.01"}, 409), ({"app_id": "2021000000000001"}, 403),
    ({"signing_key": crypto.new_rsa_key()}, 403)])
def test_an_alipay_notification_that_is_not_what_it_claims_changes_nothing(orders, emulator, change,
                                                                           status_code):
    order = place(orders)
    checkout(orders, order["id"], method="qr")
    webhook = "/api/v1/payments/alipay/webhook"
    form = "application/x-www-form-urlencoded"
    refused = orders.test_client().post(webhook, data=alipay_notification(emulator, order, **change),
                                        content_type=form)
    assert (refused.status_code, refused.get_data(as_text=True)) == (status_code, "fail")
    assert status(orders, order["id"]) == "pending_payment"
    taken = orders.test_client().post(webhook, data=alipay_notification(emulator, order), content_type=form)
    assert (taken.status_code, taken.get_data(as_text=True)) == (200, "success")
    assert status(orders, order["id"]) == "paid"
