"""Alipay through the real python-alipay-sdk against a real emulator: the SDK verifies the
signature of every answer it returns (it raises otherwise), and ``AliPay.verify`` is what the
merchant's handler runs on the notifications and return parameters the emulator signs."""
from __future__ import annotations

import datetime as dt
import io
import secrets
import zipfile
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
from alipay.exceptions import AliPayException

from payment_emulator import crypto
from payment_emulator.tests.helpers import alipay_client, press_pay


def order_no() -> str:
    return f"ord_{secrets.token_hex(8)}"


@pytest.fixture(scope="module")
def client(emulator):
    return alipay_client(emulator.env)


def verified(client, params: dict) -> dict:
    """What the merchant's notify handler does: take ``sign`` out, verify the rest."""
    data = dict(params)
    signature = data.pop("sign")
    assert client.verify(dict(data), signature), f"AliPay.verify refused {params}"
    return data


def test_precreate_scan_pay_notify_and_query(emulator, client):
    number, notify = order_no(), emulator.receiver.url("ali-precreate")
    answer = client.api_alipay_trade_precreate(subject="点点碳中和 · 12.4 kg CO2e", out_trade_no=number,
                                               total_amount="12.40", notify_url=notify)
    assert answer["code"] == "10000" and answer["out_trade_no"] == number
    qr_code = answer["qr_code"]
    assert qr_code.startswith(f"{emulator.url}/cashier/alipay/{number}")
    # As at Alipay, a precreated trade exists only once its QR code has been scanned.
    assert client.api_alipay_trade_query(out_trade_no=number)["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    assert client.api_alipay_trade_precreate(subject="点点碳中和 · 12.4 kg CO2e", out_trade_no=number,
                                             total_amount="12.40", notify_url=notify)["qr_code"] == qr_code

    browser = requests.Session()
    page = browser.get(qr_code, timeout=10)   # the buyer scans
    assert page.status_code == 200 and "Pay ¥12.40" in page.text and "支付宝" in page.text
    waiting = client.api_alipay_trade_query(out_trade_no=number)
    assert waiting["code"] == "10000" and waiting["trade_status"] == "WAIT_BUYER_PAY"

    paid = press_pay(browser, page)
    assert paid.status_code == 200 and "支付成功 · Paid" in paid.text
    [call] = emulator.receiver.wait("ali-precreate")
    assert call.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    note = verified(client, call.form)
    assert note["notify_type"] == "trade_status_sync" and note["trade_status"] == "TRADE_SUCCESS"
    assert note["out_trade_no"] == number and note["total_amount"] == "12.40"
    assert note["app_id"] == emulator.env["ALIPAY_APP_ID"]
    tampered = {**call.form, "total_amount": "0.01"}
    assert not client.verify({k: v for k, v in tampered.items() if k != "sign"}, tampered["sign"])

    trade = client.api_alipay_trade_query(out_trade_no=number)
    assert trade["trade_status"] == "TRADE_SUCCESS" and trade["trade_no"] == note["trade_no"]
    assert trade["total_amount"] == "12.40" and trade["buyer_pay_amount"] == "12.40"
    assert trade["buyer_logon_id"] == note["buyer_logon_id"] and trade["send_pay_date"]
    assert client.api_alipay_trade_query(trade_no=note["trade_no"])["out_trade_no"] == number
    answer = client.api_alipay_trade_precreate(subject="点点碳中和 · 12.4 kg CO2e", out_trade_no=number,
                                               total_amount="12.40", notify_url=notify)
    assert answer["code"] == "40004" and answer["sub_code"] == "ACQ.TRADE_HAS_SUCCESS"


def test_wap_payment_url_leads_to_the_cashier_and_back_with_signed_parameters(emulator, client):
    number = order_no()
    back = "http://127.0.0.1:1/orders/ord_1/alipay-return"
    order_string = client.api_alipay_trade_wap_pay(subject="点点碳中和", out_trade_no=number,
                                                   total_amount=8.8,
                                                   return_url=back,
                                                   notify_url=emulator.receiver.url("ali-wap"),
                                                   quit_url="http://127.0.0.1:1/orders/ord_1")
    url = f"{emulator.env['ALIPAY_GATEWAY']}?{order_string}"
    browser = requests.Session()
    landing = browser.get(url, allow_redirects=False, timeout=10)
    assert landing.status_code == 302 and f"/cashier/alipay/{number}" in landing.headers["Location"]
    page = browser.get(landing.headers["Location"], timeout=10)
    assert "Pay ¥8.80" in page.text and 'href="http://127.0.0.1:1/orders/ord_1"' in page.text
    assert client.api_alipay_trade_query(out_trade_no=number)["trade_status"] == "WAIT_BUYER_PAY"

    paid = press_pay(browser, page, allow_redirects=False)
    assert paid.status_code == 302
    location = urlsplit(paid.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == back
    returned = verified(client, {k: v[0] for k, v in parse_qs(location.query).items()})
    assert returned["method"] == "alipay.trade.wap.pay.return" and returned["out_trade_no"] == number
    assert returned["total_amount"] == "8.80"
    note = verified(client, emulator.receiver.wait("ali-wap")[0].form)
    assert note["trade_no"] == returned["trade_no"] and note["trade_status"] == "TRADE_SUCCESS"

    forged = browser.get(url.replace("8.8", "0.01"), allow_redirects=False, timeout=10)
    assert forged.status_code == 400 and "isv.invalid-signature" in forged.text


def test_a_closed_trade_cannot_be_paid(emulator, client):
    number = order_no()
    qr_code = client.api_alipay_trade_precreate(subject="to close", out_trade_no=number, total_amount="1.00",
                                                notify_url=emulator.receiver.url("ali-closed"))["qr_code"]
    not_scanned = client.api_alipay_trade_close(out_trade_no=number)
    assert not_scanned["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    browser = requests.Session()
    page = browser.get(qr_code, timeout=10)
    closed = client.api_alipay_trade_close(out_trade_no=number)
    assert closed["code"] == "10000" and closed["out_trade_no"] == number
    assert client.api_alipay_trade_query(out_trade_no=number)["trade_status"] == "TRADE_CLOSED"
    assert press_pay(browser, page).status_code == 409
    assert "交易已关闭" in browser.get(qr_code, timeout=10).text
    again = client.api_alipay_trade_precreate(subject="to close", out_trade_no=number, total_amount="1.00")
    assert again["sub_code"] == "ACQ.TRADE_HAS_CLOSE"
    assert emulator.receiver.received("ali-closed") == []

    paid = order_no()
    client.api_alipay_trade_precreate(subject="paid", out_trade_no=paid, total_amount="1.00")
    emulator.control("POST", f"trades/alipay/{paid}/pay").raise_for_status()
    assert client.api_alipay_trade_close(out_trade_no=paid)["sub_code"] == "ACQ.TRADE_STATUS_ERROR"


def test_refunds_partial_then_full_with_notifications_and_refund_query(emulator, client):
    number, notify = order_no(), emulator.receiver.url("ali-refund")
    client.api_alipay_trade_precreate(subject="refunded", out_trade_no=number, total_amount="20.00",
                                      notify_url=notify)
    emulator.control("POST", f"trades/alipay/{number}/pay").raise_for_status()
    emulator.receiver.wait("ali-refund", 1)

    first = client.api_alipay_trade_refund(refund_amount="5.00", out_trade_no=number, out_request_no="r1",
                                           refund_reason="credits unavailable")
    assert first["code"] == "10000" and first["fund_change"] == "Y" and first["refund_fee"] == "5.00"
    again = client.api_alipay_trade_refund(refund_amount="5.00", out_trade_no=number, out_request_no="r1")
    assert again["fund_change"] == "N" and again["refund_fee"] == "5.00"
    queried = client.api_alipay_trade_fastpay_refund_query("r1", out_trade_no=number)
    assert queried["refund_status"] == "REFUND_SUCCESS" and queried["refund_amount"] == "5.00"
    missing = client.api_alipay_trade_fastpay_refund_query("r9", out_trade_no=number)
    assert missing["code"] == "10000" and "refund_status" not in missing and "refund_amount" not in missing
    assert client.api_alipay_trade_query(out_trade_no=number)["trade_status"] == "TRADE_SUCCESS"

    too_much = client.api_alipay_trade_refund(refund_amount="15.01", out_trade_no=number, out_request_no="r2")
    assert too_much["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    rest = client.api_alipay_trade_refund(refund_amount="15.00", out_trade_no=number, out_request_no="r2")
    assert rest["refund_fee"] == "20.00"
    assert client.api_alipay_trade_query(out_trade_no=number)["trade_status"] == "TRADE_CLOSED"

    notes = [verified(client, call.form) for call in emulator.receiver.wait("ali-refund", 3)]
    assert [(n["trade_status"], n.get("refund_fee"), n.get("out_biz_no")) for n in notes] == [
        ("TRADE_SUCCESS", None, None), ("TRADE_SUCCESS", "5.00", "r1"), ("TRADE_CLOSED", "20.00", "r2")]

    unpaid = order_no()
    client.api_alipay_trade_precreate(subject="unpaid", out_trade_no=unpaid, total_amount="1.00")
    requests.get(f"{emulator.url}/cashier/alipay/{unpaid}", timeout=10)
    assert client.api_alipay_trade_refund(refund_amount="1.00", out_trade_no=unpaid)["sub_code"] == \
        "ACQ.TRADE_STATUS_ERROR"


def test_the_bill_download_url_serves_the_days_bill(emulator, client):
    number = order_no()
    client.api_alipay_trade_precreate(subject="账单 · bill", out_trade_no=number, total_amount="3.30")
    emulator.control("POST", f"trades/alipay/{number}/pay").raise_for_status()
    client.api_alipay_trade_refund(refund_amount="0.30", out_trade_no=number, out_request_no="b1")
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()

    for bill_type, name in (("trade", "业务明细"), ("signcustomer", "账务明细")):
        answer = client.server_api("alipay.data.dataservice.bill.downloadurl.query",
                                   {"bill_type": bill_type, "bill_date": today.isoformat()})
        assert answer["code"] == "10000", answer
        download = requests.get(answer["bill_download_url"], timeout=10)
        assert download.status_code == 200 and download.headers["Content-Type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(download.content))
        names = archive.namelist()
        assert any(n.endswith(f"_{name}.csv") for n in names)
        assert any(n.endswith(f"_{name}(汇总).csv") for n in names)
        detail = archive.read(next(n for n in names if n.endswith(f"_{name}.csv"))).decode("gbk")
        mine = [line for line in detail.splitlines() if number in line]
        assert len(mine) == 2, detail
        if bill_type == "trade":
            assert mine[0].split(",")[2] == "交易" and mine[0].split(",")[11] == "3.30"
            assert mine[1].split(",")[2] == "退款" and mine[1].split(",")[11] == "-0.30"

    month = client.server_api("alipay.data.dataservice.bill.downloadurl.query",
                              {"bill_type": "trade", "bill_date": today.strftime("%Y-%m")})
    assert month["code"] == "10000"
    empty = client.server_api("alipay.data.dataservice.bill.downloadurl.query",
                              {"bill_type": "trade", "bill_date": "2020-01-01"})
    assert empty["code"] == "40004" and empty["sub_code"] == "isp.bill_not_exist"
    wrong = client.server_api("alipay.data.dataservice.bill.downloadurl.query",
                              {"bill_type": "fund", "bill_date": today.isoformat()})
    assert wrong["sub_code"] == "ACQ.INVALID_PARAMETER"


def test_requests_signed_with_another_key_are_refused(emulator):
    impostor = alipay_client(emulator.env, private_key=crypto.private_pem(crypto.new_rsa_key()))
    with pytest.raises(AliPayException) as refused:
        impostor.api_alipay_trade_query(out_trade_no=order_no())
    assert "code:40002" in str(refused.value) and "isv.invalid-signature" in str(refused.value)


def test_unknown_methods_and_apps_are_refused(emulator, client):
    with pytest.raises(AliPayException) as unknown:
        client.server_api("alipay.trade.orderinfo.sync", {"out_trade_no": order_no()})
    assert "isv.invalid-method" in str(unknown.value)
    stranger = alipay_client({**emulator.env, "ALIPAY_APP_ID": "2021000000000000"})
    with pytest.raises(AliPayException) as no_app:
        stranger.api_alipay_trade_query(out_trade_no=order_no())
    assert "isv.invalid-app-id" in str(no_app.value)


@pytest.mark.parametrize("change, sub_code", [
    ({"total_amount": "0.001"}, "ACQ.INVALID_PARAMETER"),
    ({"total_amount": "0"}, "ACQ.INVALID_PARAMETER"),
    ({"total_amount": "abc"}, "ACQ.INVALID_PARAMETER"),
    ({"subject": ""}, "ACQ.INVALID_PARAMETER"),
    ({"out_trade_no": "has space"}, "ACQ.INVALID_PARAMETER"),
    ({"timeout_express": "soon"}, "ACQ.INVALID_PARAMETER"),
])
def test_precreate_is_validated(client, change, sub_code):
    options = {"subject": "validated", "out_trade_no": order_no(), "total_amount": "1.00", **change}
    answer = client.api_alipay_trade_precreate(**options)
    assert answer["code"] == "40004" and answer["sub_code"] == sub_code, answer


def test_the_same_out_trade_no_with_another_amount_is_refused(client):
    number = order_no()
    assert client.api_alipay_trade_precreate(subject="x", out_trade_no=number,
                                             total_amount="1.00")["code"] == "10000"
    answer = client.api_alipay_trade_precreate(subject="x", out_trade_no=number, total_amount="2.00")
    assert answer["sub_code"] == "ACQ.CONTEXT_INCONSISTENT"


def test_an_unanswered_notification_is_sent_again_until_success(emulator, client):
    emulator.receiver.answers["ali-retry"] = [(200, "fail"), (500, "oops"), (200, "success")]
    number = order_no()
    client.api_alipay_trade_precreate(subject="retried", out_trade_no=number, total_amount="1.00",
                                      notify_url=emulator.receiver.url("ali-retry"))
    emulator.control("POST", f"trades/alipay/{number}/pay").raise_for_status()
    calls = emulator.receiver.wait("ali-retry", 3)
    assert len({call.form["notify_id"] for call in calls}) == 1
    for call in calls:
        verified(client, call.form)
    attempts = emulator.control("GET", f"trades/alipay/{number}").json()["notifications"][0]["attempts"]
    assert [(a["status"], a["accepted"]) for a in attempts] == [(200, False), (500, False), (200, True)]
