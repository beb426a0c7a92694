"""WeChat Pay API v3 through the real wechatpayv3 SDK against a real emulator: every answer the
SDK gets is verified by it against the platform key (it raises otherwise), and every
notification the emulator POSTs is fed to the SDK's ``callback()``."""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import secrets
import time
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
from wechatpayv3 import WeChatPayType
from wechatpayv3.utils import build_authorization, load_private_key, rsa_sign

from payment_emulator import crypto
from payment_emulator.tests.helpers import press_pay, read, wechat_client

TODAY = lambda: dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()  # noqa: E731


def order_no(prefix: str = "ord") -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


@pytest.fixture(scope="module")
def client(emulator):
    return wechat_client(emulator.env)


@pytest.fixture(scope="module")
def cert_client(emulator):
    return wechat_client(emulator.env, mode="certificate")


def callback(client, call):
    """What the merchant's handler does with a notification: the SDK verifies and decrypts it."""
    result = client.callback(call.headers, call.body)
    assert result is not None, f"the SDK refused the notification: {call.headers} {call.body}"
    return result


def test_native_order_paid_at_the_cashier_notifies_the_merchant_and_the_sdk_accepts_it(emulator, client):
    number, notify = order_no(), emulator.receiver.url("wx-native")
    code, body = client.pay(description="点点碳中和 · 12.4 kg CO2e", out_trade_no=number,
                            amount={"total": 124, "currency": "CNY"}, notify_url=notify, attach="scene=cdcn")
    assert code == 200
    code_url = json.loads(body)["code_url"]
    assert code_url.startswith(f"{emulator.url}/cashier/wechat/{number}")

    code, body = client.query(out_trade_no=number)
    assert code == 200 and json.loads(body)["trade_state"] == "NOTPAY"
    assert "transaction_id" not in json.loads(body)

    browser = requests.Session()
    page = browser.get(code_url, timeout=10)
    assert page.status_code == 200
    assert "Pay ¥1.24" in page.text and "确认支付" in page.text and "Payment emulator" in page.text
    paid = press_pay(browser, page)
    assert paid.status_code == 200 and "支付成功 · Paid" in paid.text and "Pay ¥" not in paid.text

    [call] = emulator.receiver.wait("wx-native")
    assert call.headers["Wechatpay-Serial"] == emulator.env["WECHATPAY_PUBLIC_KEY_ID"]
    event = callback(client, call)
    assert event["event_type"] == "TRANSACTION.SUCCESS" and event["resource_type"] == "encrypt-resource"
    resource = event["resource"]
    assert resource["out_trade_no"] == number and resource["trade_state"] == "SUCCESS"
    assert resource["mchid"] == emulator.env["WECHATPAY_MCHID"]
    assert resource["appid"] == emulator.env["WECHATPAY_APPID"]
    assert resource["amount"] == {"total": 124, "payer_total": 124, "currency": "CNY",
                                  "payer_currency": "CNY"}
    assert resource["attach"] == "scene=cdcn" and resource["payer"]["openid"].startswith("o")

    code, body = client.query(out_trade_no=number)
    trade = json.loads(body)
    assert trade["trade_state"] == "SUCCESS" and trade["transaction_id"] == resource["transaction_id"]
    assert trade["success_time"] == resource["success_time"] and trade["payer"] == resource["payer"]
    code, body = client.query(transaction_id=trade["transaction_id"])
    assert code == 200 and json.loads(body)["out_trade_no"] == number

    again = press_pay(browser, page)   # the stale page's button: the trade is paid already
    assert again.status_code == 409 and "cannot be paid" in again.text
    assert len(emulator.receiver.received("wx-native")) == 1


def test_h5_order_goes_back_to_the_merchants_redirect_url(emulator):
    h5 = wechat_client(emulator.env, pay_type=WeChatPayType.H5)
    number, notify = order_no(), emulator.receiver.url("wx-h5")
    code, body = h5.pay(description="H5 order", out_trade_no=number, amount={"total": 1}, notify_url=notify,
                        scene_info={"payer_client_ip": "127.0.0.1", "h5_info": {"type": "Wap"}})
    assert code == 200
    h5_url = json.loads(body)["h5_url"]
    back = "http://127.0.0.1:1/orders/ord_1/paid?from=wechat"
    browser = requests.Session()
    page = browser.get(f"{h5_url}&redirect_url={quote(back, safe='')}", timeout=10)
    assert "Pay ¥0.01" in page.text and "H5" in page.text
    paid = press_pay(browser, page, allow_redirects=False)
    assert paid.status_code == 302 and paid.headers["Location"] == back
    resource = callback(h5, emulator.receiver.wait("wx-h5")[0])["resource"]
    assert resource["trade_type"] == "MWEB" and resource["trade_state"] == "SUCCESS"

    code, body = h5.pay(description="H5 order", out_trade_no=order_no(), amount={"total": 1},
                        notify_url=notify, scene_info={"payer_client_ip": "127.0.0.1"})
    assert code == 400 and json.loads(body)["code"] == "PARAM_ERROR"


def test_jsapi_order_with_the_openid_from_wechat_oauth(emulator):
    env = emulator.env
    jsapi = wechat_client(env, pay_type=WeChatPayType.JSAPI)
    oauth = env["WECHAT_OAUTH_BASE"]
    browser = requests.Session()
    after = "http://127.0.0.1:1/wechat/oauth?next=%2Fs%2Fcdcn"
    answer = browser.get(f"{oauth}/connect/oauth2/authorize", allow_redirects=False, timeout=10, params={
        "appid": env["WECHATPAY_APPID"], "redirect_uri": after, "response_type": "code",
        "scope": "snsapi_base", "state": "xyz"})
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert location.path == "/wechat/oauth"
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"] and query["next"] == ["/s/cdcn"]
    token = {"appid": env["WECHATPAY_APPID"], "secret": env["WECHAT_APP_SECRET"], "code": query["code"][0],
             "grant_type": "authorization_code"}
    assert requests.get(f"{oauth}/sns/oauth2/access_token", params={**token, "secret": "wrong"},
                        timeout=10).json()["errcode"] == 40125
    openid = requests.get(f"{oauth}/sns/oauth2/access_token", params=token, timeout=10).json()["openid"]
    assert requests.get(f"{oauth}/sns/oauth2/access_token", params=token,
                        timeout=10).json()["errcode"] == 40163
    # The same browser is the same WeChat user: a second sign-in gives the same openid.
    again = browser.get(f"{oauth}/connect/oauth2/authorize", allow_redirects=False, timeout=10, params={
        "appid": env["WECHATPAY_APPID"], "redirect_uri": after, "response_type": "code",
        "scope": "snsapi_base"})
    code2 = parse_qs(urlsplit(again.headers["Location"]).query)["code"][0]
    assert requests.get(f"{oauth}/sns/oauth2/access_token", params={**token, "code": code2},
                        timeout=10).json()["openid"] == openid

    number = order_no()
    code, body = jsapi.pay(description="JSAPI order", out_trade_no=number, amount={"total": 1240},
                           payer={"openid": openid}, notify_url=emulator.receiver.url("wx-jsapi"))
    assert code == 200
    prepay_id = json.loads(body)["prepay_id"]
    # What the merchant's page hands to WeixinJSBridge.invoke("getBrandWCPayRequest", …).
    invoke = {"appId": env["WECHATPAY_APPID"], "timeStamp": str(int(time.time())),
              "nonceStr": secrets.token_hex(16), "package": f"prepay_id={prepay_id}", "signType": "RSA"}
    invoke["paySign"] = jsapi.sign([invoke["appId"], invoke["timeStamp"], invoke["nonceStr"],
                                    invoke["package"]])
    back = "http://127.0.0.1:1/orders/ord_2"
    forged = browser.get(f"{emulator.url}/cashier/wechat/jsapi", timeout=10,
                         params={**invoke, "timeStamp": "1", "return_url": back})
    assert forged.status_code == 400 and "paySign" in forged.text
    page = browser.get(f"{emulator.url}/cashier/wechat/jsapi", params={**invoke, "return_url": back},
                       timeout=10)
    assert page.status_code == 200 and "Pay ¥12.40" in page.text and openid in page.text
    paid = press_pay(browser, page, allow_redirects=False)
    assert paid.status_code == 302 and paid.headers["Location"] == back
    resource = callback(jsapi, emulator.receiver.wait("wx-jsapi")[0])["resource"]
    assert resource["trade_type"] == "JSAPI" and resource["payer"] == {"openid": openid}

    bridge = requests.get(f"{emulator.url}/_emulator/weixin-jsbridge.js", timeout=10)
    assert bridge.status_code == 200 and "getBrandWCPayRequest" in bridge.text


def test_a_closed_order_can_be_neither_paid_nor_placed_again(emulator, client):
    number = order_no()
    code, body = client.pay(description="to close", out_trade_no=number, amount={"total": 100},
                            notify_url=emulator.receiver.url("wx-closed"))
    browser = requests.Session()
    page = browser.get(json.loads(body)["code_url"], timeout=10)
    assert client.close(out_trade_no=number) == (204, b"")   # the SDK verified the empty answer's signature
    assert json.loads(client.query(out_trade_no=number)[1])["trade_state"] == "CLOSED"
    assert client.close(out_trade_no=number)[0] == 204
    assert press_pay(browser, page).status_code == 409
    closed_page = browser.get(page.url, timeout=10)
    assert "订单已关闭" in closed_page.text and "Pay ¥" not in closed_page.text
    code, body = client.pay(description="to close", out_trade_no=number, amount={"total": 100},
                            notify_url=emulator.receiver.url("wx-closed"))
    assert code == 400 and json.loads(body)["code"] == "ORDER_CLOSED"
    assert emulator.receiver.received("wx-closed") == []

    assert client.close(out_trade_no=order_no())[0] == 404
    paid = order_no()
    client.pay(description="paid", out_trade_no=paid, amount={"total": 100},
               notify_url=emulator.receiver.url("wx-c2"))
    emulator.control("POST", f"trades/wechatpay/{paid}/pay").raise_for_status()
    code, body = client.close(out_trade_no=paid)
    assert code == 400 and json.loads(body)["code"] == "ORDERPAID"


def paid_order(emulator, client, total: int, notify_name: str) -> dict:
    number = order_no()
    client.pay(description="点点碳中和", out_trade_no=number, amount={"total": total},
               notify_url=emulator.receiver.url(notify_name))
    emulator.control("POST", f"trades/wechatpay/{number}/pay").raise_for_status()
    return callback(client, emulator.receiver.wait(notify_name)[0])["resource"]


def test_refunds_are_processing_then_successful_and_notified(emulator, client):
    trade = paid_order(emulator, client, 1240, "wx-refund-paid")
    notify = emulator.receiver.url("wx-refund")
    code, body = client.refund(out_refund_no=f"rf_{secrets.token_hex(6)}", out_trade_no=trade["out_trade_no"],
                               amount={"refund": 240, "total": 1240, "currency": "CNY"},
                               reason="credits unavailable",
                               notify_url=notify)
    assert code == 200
    refund = json.loads(body)
    assert refund["status"] == "PROCESSING" and refund["amount"]["refund"] == 240
    assert refund["transaction_id"] == trade["transaction_id"] and "success_time" not in refund
    again = json.loads(client.refund(out_refund_no=refund["out_refund_no"],
                                     out_trade_no=trade["out_trade_no"],
                                     amount={"refund": 240, "total": 1240, "currency": "CNY"},
                                     notify_url=notify)[1])
    assert again["refund_id"] == refund["refund_id"]
    assert json.loads(client.query(out_trade_no=trade["out_trade_no"])[1])["trade_state"] == "REFUND"

    event = callback(client, emulator.receiver.wait("wx-refund")[0])
    assert event["event_type"] == "REFUND.SUCCESS"
    assert event["resource"]["refund_status"] == "SUCCESS"
    assert event["resource"]["out_refund_no"] == refund["out_refund_no"]
    assert event["resource"]["amount"]["refund"] == 240
    queried = json.loads(client.query_refund(out_refund_no=refund["out_refund_no"])[1])
    assert queried["status"] == "SUCCESS" and queried["success_time"]

    by_transaction = client.refund(out_refund_no=f"rf_{secrets.token_hex(6)}",
                                   transaction_id=trade["transaction_id"],
                                   amount={"refund": 1000, "total": 1240, "currency": "CNY"})
    assert by_transaction[0] == 200
    code, body = client.refund(out_refund_no=f"rf_{secrets.token_hex(6)}", out_trade_no=trade["out_trade_no"],
                               amount={"refund": 1, "total": 1240, "currency": "CNY"})
    assert code == 400 and json.loads(body)["code"] == "INVALID_REQUEST"   # nothing left to refund
    code, body = client.refund(out_refund_no="rf_x", out_trade_no=trade["out_trade_no"],
                               amount={"refund": 1, "total": 1240})
    assert code == 400 and json.loads(body)["detail"]["field"] == "amount.currency"
    assert client.query_refund(out_refund_no="rf_unknown")[0] == 404

    unpaid = order_no()
    client.pay(description="unpaid", out_trade_no=unpaid, amount={"total": 5}, notify_url=notify)
    code, body = client.refund(out_refund_no="rf_unpaid", out_trade_no=unpaid,
                               amount={"refund": 5, "total": 5, "currency": "CNY"})
    assert code == 400 and json.loads(body)["code"] == "INVALID_REQUEST"


def test_the_trade_bill_lists_the_days_payments_and_refunds(emulator, client):
    trade = paid_order(emulator, client, 880, "wx-bill")
    client.refund(out_refund_no=f"rf_{secrets.token_hex(6)}", out_trade_no=trade["out_trade_no"],
                  amount={"refund": 80, "total": 880, "currency": "CNY"})
    time.sleep(0.8)   # the refund succeeds after refund_seconds

    code, body = client.trade_bill(bill_date=TODAY().isoformat())   # the SDK asks for GZIP
    assert code == 200
    bill = json.loads(body)
    assert bill["hash_type"] == "SHA1"
    assert bill["download_url"].startswith(f"{emulator.url}/v3/billdownload/file")
    code, content = client.download_bill(bill["download_url"])
    assert code == 200
    text = gzip.decompress(content)
    assert hashlib.sha1(text).hexdigest() == bill["hash_value"]
    lines = text.decode("utf-8").splitlines()
    assert lines[0].startswith("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号")
    columns = lines[0].split(",")
    rows = [dict(zip(columns, (field.removeprefix("`") for field in line.split(","))))
            for line in lines[1:-2]]
    assert all(line.startswith("`") for line in lines[1:-2] + lines[-1:])
    mine = [row for row in rows if row["商户订单号"] == trade["out_trade_no"]]
    assert {row["交易状态"] for row in mine} == {"SUCCESS", "REFUND"}
    payment = next(row for row in mine if row["交易状态"] == "SUCCESS")
    assert payment["微信订单号"] == trade["transaction_id"] and payment["订单金额"] == "8.80"
    assert next(row for row in mine if row["交易状态"] == "REFUND")["退款金额"] == "0.80"
    assert lines[-2].split(",") == ["总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额",
                                    "手续费总金额", "订单总金额", "申请退款总金额"]
    assert int(lines[-1].split(",")[0].removeprefix("`")) == len(rows)

    code, body = client.trade_bill(bill_date=TODAY().isoformat(), tar_type="")
    code, plain = client.download_bill(json.loads(body)["download_url"])
    assert plain.decode("utf-8") == text.decode("utf-8")
    code, body = client.trade_bill(bill_date="2020-01-01")
    assert code == 400 and json.loads(body)["code"] == "NO_STATEMENT_EXIST"
    code, body = client.trade_bill(bill_date=(TODAY() + dt.timedelta(days=2)).isoformat())
    assert code == 400
    code, body = client.trade_bill(bill_date="2024-13-45")
    assert code == 400 and json.loads(body)["code"] == "PARAM_ERROR"


def test_certificate_mode_fetches_the_encrypted_platform_certificate_and_verifies_answers(emulator,
                                                                                          cert_client):
    from cryptography import x509

    core = cert_client._core
    core._gate_way = emulator.env["WECHATPAY_API_BASE"]
    core._update_certificates()   # GET /v3/certificates, decrypted with the APIv3 key
    [certificate] = core._certificates
    on_disk = x509.load_pem_x509_certificate(
        (emulator.state_dir / "wechatpay_platform_cert.pem").read_bytes())
    assert certificate.serial_number == on_disk.serial_number

    number = order_no()
    code, body = cert_client.pay(description="certificate mode", out_trade_no=number, amount={"total": 3},
                                 notify_url=emulator.receiver.url("wx-cert"))
    assert code == 200   # the SDK verified the answer against the certificate's key
    browser = requests.Session()
    press_pay(browser, browser.get(json.loads(body)["code_url"], timeout=10))
    call = emulator.receiver.wait("wx-cert")[0]
    assert call.headers["Wechatpay-Serial"] == format(on_disk.serial_number, "X")
    assert callback(cert_client, call)["resource"]["out_trade_no"] == number
    assert json.loads(cert_client.query(out_trade_no=number)[1])["trade_state"] == "SUCCESS"


def test_requests_without_a_valid_merchant_signature_are_refused(emulator, client):
    impostor = wechat_client(emulator.env, private_key=crypto.private_pem(crypto.new_rsa_key()))
    code, body = impostor.pay(description="forged", out_trade_no=order_no(), amount={"total": 1},
                              notify_url=emulator.receiver.url("wx-forged"))
    assert code == 401 and json.loads(body)["code"] == "SIGN_ERROR"

    env = emulator.env
    key = load_private_key(read(env["WECHATPAY_PRIVATE_KEY_FILE"]))
    path = "/v3/pay/transactions/native"
    signed_body = json.dumps({"appid": env["WECHATPAY_APPID"], "mchid": env["WECHATPAY_MCHID"],
                              "description": "one fen", "out_trade_no": order_no(), "amount": {"total": 1},
                              "notify_url": emulator.receiver.url("wx-forged")})
    authorization = build_authorization(path, "POST", env["WECHATPAY_MCHID"], env["WECHATPAY_CERT_SERIAL_NO"],
                                        key,
                                        data=signed_body)
    tampered = signed_body.replace('"total": 1', '"total": 100')
    headers = {"Content-Type": "application/json", "Wechatpay-Serial": env["WECHATPAY_PUBLIC_KEY_ID"]}
    answer = requests.post(f"{emulator.url}{path}", data=tampered,
                           headers={**headers, "Authorization": authorization}, timeout=10)
    assert answer.status_code == 401 and answer.json()["code"] == "SIGN_ERROR"
    assert requests.post(f"{emulator.url}{path}", data=signed_body, headers=headers,
                         timeout=10).status_code == 401
    stale = str(int(time.time()) - 3600)
    nonce = secrets.token_hex(16)
    signature = rsa_sign(key, f"POST\n{path}\n{stale}\n{nonce}\n{signed_body}\n")
    old = (f'WECHATPAY2-SHA256-RSA2048 mchid="{env["WECHATPAY_MCHID"]}",nonce_str="{nonce}",'
           f'signature="{signature}",timestamp="{stale}",serial_no="{env["WECHATPAY_CERT_SERIAL_NO"]}"')
    assert requests.post(f"{emulator.url}{path}", data=signed_body, headers={**headers, "Authorization": old},
                         timeout=10).json()["code"] == "SIGN_ERROR"
    wrong_serial = authorization.replace(env["WECHATPAY_CERT_SERIAL_NO"], "0123456789ABCDEF")
    assert requests.post(f"{emulator.url}{path}", data=signed_body, headers={**headers,
                                                                             "Authorization": wrong_serial},
                         timeout=10).status_code == 401
    # The untouched request goes through: only the signature was wrong above.
    assert requests.post(f"{emulator.url}{path}", data=signed_body,
                         headers={**headers, "Authorization": authorization}, timeout=10).status_code == 200
    # A signed query signs its query string too.
    number = json.loads(signed_body)["out_trade_no"]
    query_path = f"/v3/pay/transactions/out-trade-no/{number}?mchid={env['WECHATPAY_MCHID']}"
    signed_query = build_authorization(query_path, "GET", env["WECHATPAY_MCHID"],
                                       env["WECHATPAY_CERT_SERIAL_NO"], key)
    other_query = f"/v3/pay/transactions/out-trade-no/{number}?mchid={env['WECHATPAY_MCHID']}&x=1"
    assert requests.get(f"{emulator.url}{other_query}", headers={"Authorization": signed_query},
                        timeout=10).status_code == 401
    assert requests.get(f"{emulator.url}{query_path}", headers={"Authorization": signed_query},
                        timeout=10).status_code == 200


def test_answers_are_signed_with_the_platform_key(emulator):
    """A client that trusts another key refuses the emulator's answers: they are really signed."""
    stranger = wechat_client(emulator.env,
                             platform_public_key=crypto.public_pem(crypto.new_rsa_key().public_key()))
    with pytest.raises(Exception, match="failed to verify the signature"):
        stranger.pay(description="x", out_trade_no=order_no(), amount={"total": 1},
                     notify_url=emulator.receiver.url("wx-stranger"))


@pytest.mark.parametrize("change, code, field", [
    ({"amount": {"total": 0}}, "PARAM_ERROR", "amount.total"),
    ({"amount": {"total": 1.5}}, "PARAM_ERROR", "amount.total"),
    ({"amount": {"total": 100, "currency": "USD"}}, "PARAM_ERROR", "amount.currency"),
    ({"out_trade_no": "abc"}, "PARAM_ERROR", "out_trade_no"),
    ({"out_trade_no": "order number 1"}, "PARAM_ERROR", "out_trade_no"),
    ({"notify_url": "http://example.com/notify"}, "PARAM_ERROR", "notify_url"),
    ({"notify_url": "https://example.com/notify?provider=wechat"}, "PARAM_ERROR", "notify_url"),
    ({"description": ""}, "PARAM_ERROR", "description"),
    ({"description": None}, "PARAM_ERROR", "description"),
    ({"time_expire": "tomorrow"}, "PARAM_ERROR", "time_expire"),
    ({"appid": "wx0000000000000000"}, "APPID_MCHID_NOT_MATCH", None),
    ({"mchid": "1900000001"}, "PARAM_ERROR", "mchid"),
])
def test_orders_are_validated_as_wechat_pay_does(emulator, client, change, code, field):
    from wechatpayv3.type import RequestType

    env = emulator.env
    body = {"appid": env["WECHATPAY_APPID"], "mchid": env["WECHATPAY_MCHID"], "description": "validation",
            "out_trade_no": order_no(), "amount": {"total": 1},
            "notify_url": emulator.receiver.url("wx-valid")}
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    status, answer = client._core.request("/v3/pay/transactions/native", method=RequestType.POST, data=body)
    assert status == 400, answer
    error = json.loads(answer)
    assert error["code"] == code and error["message"]
    if field:
        assert error["detail"]["field"] == field


def test_placing_the_same_order_twice(emulator, client):
    number, notify = order_no(), emulator.receiver.url("wx-twice")
    first = client.pay(description="twice", out_trade_no=number, amount={"total": 2}, notify_url=notify)
    assert client.pay(description="twice", out_trade_no=number, amount={"total": 2},
                      notify_url=notify) == first
    code, body = client.pay(description="twice", out_trade_no=number, amount={"total": 3}, notify_url=notify)
    assert code == 403 and json.loads(body)["code"] == "OUT_TRADE_NO_USED"
    code, body = client.query(out_trade_no=order_no())
    assert code == 404 and json.loads(body)["code"] == "ORDER_NOT_EXIST"


def test_an_expired_order_cannot_be_paid(emulator, client):
    number = order_no()
    past = dt.datetime.now(ZoneInfo("Asia/Shanghai")) - dt.timedelta(minutes=1)
    past = past.isoformat(timespec="seconds")
    code, body = client.pay(description="expired", out_trade_no=number, amount={"total": 1}, time_expire=past,
                            notify_url=emulator.receiver.url("wx-expired"))
    assert code == 200
    browser = requests.Session()
    page = browser.get(json.loads(body)["code_url"], timeout=10)
    assert "订单已过期" in page.text and "Pay ¥" not in page.text
    assert emulator.control("POST", f"trades/wechatpay/{number}/pay").status_code == 409


def test_notifications_are_sent_again_until_the_merchant_accepts_one(emulator, client):
    emulator.receiver.answers["wx-retry"] = [(500, "busy"), (503, "busy"), (200, "")]
    number = order_no()
    client.pay(description="retried", out_trade_no=number, amount={"total": 7},
               notify_url=emulator.receiver.url("wx-retry"))
    emulator.control("POST", f"trades/wechatpay/{number}/pay").raise_for_status()
    calls = emulator.receiver.wait("wx-retry", 3)
    events = [callback(client, call) for call in calls]
    assert len({event["id"] for event in events}) == 1   # one event, delivered three times
    time.sleep(1.0)
    assert len(emulator.receiver.received("wx-retry")) == 3   # accepted: no more
    attempts = emulator.control("GET", f"trades/wechatpay/{number}").json()["notifications"][0]["attempts"]
    assert [attempt["status"] for attempt in attempts] == [500, 503, 200]
    assert attempts[-1]["accepted"] is True


def test_the_wechat_oauth_refuses_what_wechat_refuses(emulator):
    env, oauth = emulator.env, emulator.env["WECHAT_OAUTH_BASE"]
    base = {"appid": env["WECHATPAY_APPID"], "redirect_uri": "http://127.0.0.1:1/back",
            "response_type": "code",
            "scope": "snsapi_base"}
    for change in ({"appid": "wx_unknown"}, {"scope": "snsapi_login"}, {"response_type": "token"},
                   {"redirect_uri": "javascript:alert(1)"}):
        answer = requests.get(f"{oauth}/connect/oauth2/authorize", params={**base, **change},
                              allow_redirects=False,
                              timeout=10)
        assert answer.status_code == 400, change
    token = {"appid": env["WECHATPAY_APPID"], "secret": env["WECHAT_APP_SECRET"], "code": "nope",
             "grant_type": "authorization_code"}
    assert requests.get(f"{oauth}/sns/oauth2/access_token", params=token,
                        timeout=10).json()["errcode"] == 40029
    assert requests.get(f"{oauth}/sns/oauth2/access_token", params={**token, "appid": "wx_unknown"},
                        timeout=10).json()["errcode"] == 40013


def test_unknown_apis_answer_a_signed_not_found(emulator, client):
    from wechatpayv3.type import RequestType

    for path in ("/v3/pay/transactions/combine", "/v3/marketing/favor/stocks"):
        status, body = client._core.request(path, method=RequestType.POST, data={"a": 1})
        assert status == 404 and json.loads(body)["code"] == "NOT_FOUND"
