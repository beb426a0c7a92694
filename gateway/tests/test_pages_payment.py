"""The pay page's real payment against stand-in services: the method by where the page is
opened (User-Agent), the provider the guest chooses, the QR code drawn by the gateway, and
WeChat's OAuth for JSAPI's openid (the state checked, the openid kept, refusals explained)."""
from __future__ import annotations

import json
import re
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from diandian_common.testing import free_port
from gateway import pages_payment, participants
from gateway.tests.pages_support import ORDER, PUBLIC, Markup, as_me

DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/18.1 Mobile/15E148 Safari/604.1")
WECHAT = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
          "Mobile Safari/537.36 XWEB/1260117 MMWEBSDK/20240301 MicroMessenger/8.0.49.2600(0x28003133) "
          "WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64")

OPTIONS = [{"provider": "wechatpay", "methods": ["h5", "jsapi", "native"]},
           {"provider": "alipay", "methods": ["qr", "wap"]}]
REAL_ORDER = {**ORDER, "id": "ord_wx", "payment": {
    "provider": "wechatpay", "checkout_url": f"{PUBLIC}/pay/ord_wx", "options": OPTIONS}}
CODE_URL = "http://127.0.0.1:8008/cashier/wechat/ord_wx"
QR_CODE = "http://127.0.0.1:8008/cashier/alipay/ord_wx"
JSAPI = {"appId": "wx_demo", "timeStamp": "1764892800", "nonceStr": "n0nce", "package": "prepay_id=wx1",
         "signType": "RSA", "paySign": "c2lnbmVk"}


def opened(req):
    body = req.get_json()
    links = {"native": {"code_url": CODE_URL}, "qr": {"qr_code": QR_CODE},
             "h5": {"h5_url": "http://127.0.0.1:8008/cashier/wechat/ord_wx?h5=1"},
             "wap": {"pay_url": "http://127.0.0.1:8008/gateway.do?method=alipay.trade.wap.pay&sign=x"},
             "jsapi": {"jsapi": JSAPI}}
    if body["method"] == "jsapi" and not body.get("openid"):
        return 422, {"error": {"code": "validation_error", "message": "jsapi needs the guest's openid"}}
    return 200, {"provider": body["provider"], "method": body["method"], **links[body["method"]],
                 "expires_at": "2026-12-05T01:00:00+00:00"}


@pytest.fixture
def orders(services):
    services["orders"].on("GET", "/api/v1/orders/ord_wx", (200, REAL_ORDER))
    services["orders"].on("POST", "/api/v1/orders/ord_wx/checkout", opened)
    return services["orders"]


def checkouts(orders):
    return [r["json"] for r in orders.requests if r["method"] == "POST"]


def decode_qr(markup: Markup) -> list[str]:
    import zxingcpp
    from PIL import Image, ImageDraw

    svg = next(a for a in markup.find("svg") if a.get("class") == "qr")
    size = int(svg["viewbox"].split()[2])
    path = next(a["d"] for a in markup.find("path"))
    scale = 8
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y, width in re.findall(r"M(\d+) (\d+)h(\d+)", path):
        x, y, width = int(x), int(y), int(width)
        draw.rectangle([x * scale, y * scale, (x + width) * scale - 1, (y + 1) * scale - 1], fill=0)
    return [r.text for r in zxingcpp.read_barcodes(image)]


def pay_page(client, ua, query="", lang="en", status=200):
    response = client.get(f"/pay/ord_wx{query}", headers={"User-Agent": ua, "Accept-Language": lang})
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response


def test_a_large_screen_shows_the_providers_qr_code_drawn_by_the_gateway(client, orders):
    as_me(client)
    html = pay_page(client, DESKTOP).get_data(as_text=True)
    markup = Markup(html)
    assert checkouts(orders) == [{"method": "native", "provider": "wechatpay"}]
    assert decode_qr(markup) == [CODE_URL]
    assert "Scan this code with WeChat Pay to pay ¥24.03." in html and "Sandbox" not in html
    # Both providers enabled: the guest may choose; the current one is marked.
    choices = {a["href"]: a for a in markup.find("a") if "provider=" in a.get("href", "")}
    assert set(choices) == {"/pay/ord_wx?provider=wechatpay", "/pay/ord_wx?provider=alipay"}
    assert choices["/pay/ord_wx?provider=wechatpay"].get("aria-current") == "true"
    # The page waits for the provider's confirmation (static/app.js polls the order).
    assert markup.find("div", **{"data-provider": "wechatpay", "data-status": "pending_payment"})

    alipay = Markup(pay_page(client, DESKTOP, "?provider=alipay", lang="zh-CN").get_data(as_text=True))
    assert checkouts(orders)[-1] == {"method": "qr", "provider": "alipay"}
    assert decode_qr(alipay) == [QR_CODE]
    assert "请使用支付宝扫描二维码" in "".join(alipay.text)


def test_a_phone_browser_gets_a_link_to_the_providers_cashier(client, orders):
    as_me(client)
    link = Markup(pay_page(client, PHONE).get_data(as_text=True)).find("a", **{"data-method": "h5"})[0]
    assert checkouts(orders) == [{"method": "h5", "provider": "wechatpay"}]
    back = parse_qs(urlsplit(link["href"]).query)["redirect_url"]
    assert back == [f"{PUBLIC}/pay/ord_wx"]  # WeChat's cashier brings the guest back here
    markup = Markup(pay_page(client, PHONE, "?provider=alipay").get_data(as_text=True))
    assert checkouts(orders)[-1] == {"method": "wap", "provider": "alipay"}
    assert markup.find("a", **{"data-method": "wap"})[0]["href"].startswith("http://127.0.0.1:8008/gateway.do?")
    assert not markup.find("svg")


def test_an_unknown_provider_choice_falls_back_and_one_provider_offers_no_choice(client, orders, services):
    as_me(client)
    pay_page(client, DESKTOP, "?provider=evilpay")
    assert checkouts(orders) == [{"method": "native", "provider": "wechatpay"}]
    services["orders"].on("GET", "/api/v1/orders/ord_wx", (200, {
        **REAL_ORDER, "payment": {**REAL_ORDER["payment"], "provider": "alipay", "options": OPTIONS[1:]}}))
    markup = Markup(pay_page(client, DESKTOP).get_data(as_text=True))
    assert checkouts(orders)[-1] == {"method": "qr", "provider": "alipay"}
    assert not [a for a in markup.find("a") if "provider=" in a.get("href", "")]


def test_no_trade_is_opened_for_the_sandbox_a_paid_order_or_another_guest(client, orders, services):
    sandbox = {**REAL_ORDER, "payment": {**REAL_ORDER["payment"], "provider": "sandbox"}}
    services["orders"].on("GET", "/api/v1/orders/ord_wx", (200, sandbox))
    as_me(client)
    assert "Sandbox — no money moves" in pay_page(client, DESKTOP).get_data(as_text=True)
    services["orders"].on("GET", "/api/v1/orders/ord_wx", (200, {**REAL_ORDER, "status": "paid"}))
    assert "How to pay" not in pay_page(client, DESKTOP).get_data(as_text=True)
    others = {k: v for k, v in REAL_ORDER.items() if k not in ("participant", "payment")}
    services["orders"].on("GET", "/api/v1/orders/ord_wx", (200, others))
    pay_page(client, DESKTOP, status=404)
    assert checkouts(orders) == []


def test_a_provider_that_fails_is_said_so_on_the_page(client, orders, services):
    services["orders"].on("POST", "/api/v1/orders/ord_wx/checkout", (502, {
        "error": {"code": "payment_provider_error", "message": "wechatpay checkout: timed out"}}))
    as_me(client)
    html = pay_page(client, DESKTOP).get_data(as_text=True)
    assert "WeChat Pay could not be reached just now; please reload this page" in html
    assert "暂时无法连接微信支付" in pay_page(client, DESKTOP, lang="zh-CN").get_data(as_text=True)


class FakeWeChat:
    """WeChat's OAuth token endpoint: one good code, WeChat's errcode for any other."""

    def __init__(self):
        self.requests: list[dict] = []
        app = Flask("wechat")

        @app.get("/sns/oauth2/access_token")
        def access_token():
            self.requests.append(request.args.to_dict())
            if request.args.get("code") == "good-code" and request.args.get("secret") == "app-secret":
                return jsonify({"access_token": "at", "expires_in": 7200, "refresh_token": "rt",
                                "openid": "o_guest_openid", "scope": "snsapi_base"})
            return jsonify({"errcode": 40029, "errmsg": "invalid code"})

        self.server = make_server("127.0.0.1", free_port(), app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def wechat(monkeypatch):
    fake = FakeWeChat()
    monkeypatch.setenv("WECHATPAY_APPID", "wx_demo")
    monkeypatch.setenv("WECHAT_APP_SECRET", "app-secret")
    monkeypatch.setenv("WECHAT_OAUTH_BASE", "https://open.weixin.example")
    monkeypatch.setenv("WECHAT_API_BASE_FOR_OAUTH", fake.url)
    yield fake
    fake.stop()


def to_wechat_oauth(client) -> dict:
    response = pay_page(client, WECHAT, status=302)
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc, location.path, location.fragment) == (
        "https", "open.weixin.example", "/connect/oauth2/authorize", "wechat_redirect")
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["appid"] == "wx_demo" and query["redirect_uri"] == f"{PUBLIC}/wechat/oauth"
    assert (query["response_type"], query["scope"]) == ("code", "snsapi_base") and len(query["state"]) >= 16
    assert client.get_cookie(pages_payment.STATE_COOKIE, path="/wechat/oauth") is not None
    return query


def test_inside_wechat_the_openid_comes_from_oauth_and_jsapi_pays(client, orders, wechat):
    as_me(client)
    state = to_wechat_oauth(client)["state"]
    assert checkouts(orders) == []  # no openid yet, no trade
    back = client.get("/wechat/oauth", query_string={"code": "good-code", "state": state})
    assert back.status_code == 303 and back.headers["Location"] == "/pay/ord_wx"
    assert wechat.requests == [{"appid": "wx_demo", "secret": "app-secret", "code": "good-code",
                                "grant_type": "authorization_code"}]
    markup = Markup(pay_page(client, WECHAT).get_data(as_text=True))
    assert checkouts(orders) == [{"method": "jsapi", "provider": "wechatpay", "openid": "o_guest_openid"}]
    button = markup.find("button", **{"class": "button primary big js-jsapi-button"})[0]
    assert json.loads(button["data-jsapi"]) == JSAPI


def test_the_openid_cookie_is_the_guests_own(client, orders, wechat, app):
    as_me(client)
    state = to_wechat_oauth(client)["state"]
    client.get("/wechat/oauth", query_string={"code": "good-code", "state": state})
    kept = client.get_cookie(pages_payment.OPENID_COOKIE).value
    other = app.test_client()
    other.set_cookie(participants.COOKIE_NAME, participants._serializer().dumps("p_other"))
    other.set_cookie(pages_payment.OPENID_COOKIE, kept)  # copied to another guest's browser: not theirs
    assert pay_page(other, WECHAT, status=302)
    assert checkouts(orders) == []


def test_the_oauth_callback_refuses_a_wrong_state_and_explains_a_missing_or_bad_code(client, orders, wechat):
    as_me(client)
    state = to_wechat_oauth(client)["state"]
    forged = client.get("/wechat/oauth", query_string={"code": "good-code", "state": "attacker-state"},
                        headers={"Accept-Language": "en"})
    assert forged.status_code == 400
    assert "This WeChat sign-in link is not valid here" in forged.get_data(as_text=True)
    assert client.get_cookie(pages_payment.OPENID_COOKIE) is None and wechat.requests == []
    missing = client.get("/wechat/oauth", query_string={"state": state}, headers={"Accept-Language": "en"})
    assert missing.status_code == 400
    assert "WeChat did not confirm who you are" in missing.get_data(as_text=True)
    bad = client.get("/wechat/oauth", query_string={"code": "used-code", "state": state})
    assert bad.status_code == 502 and "微信未能确认您的身份" in bad.get_data(as_text=True)
    assert client.get_cookie(pages_payment.OPENID_COOKIE) is None
    # Without the state cookie (another browser, or it expired) nothing is accepted either.
    fresh = client.application.test_client()
    as_me(fresh)
    assert fresh.get("/wechat/oauth", query_string={"code": "good-code", "state": state}).status_code == 400


def test_inside_wechat_without_an_app_secret_wechat_pay_falls_back_to_h5(client, orders, monkeypatch):
    monkeypatch.delenv("WECHAT_APP_SECRET", raising=False)
    as_me(client)
    pay_page(client, WECHAT)
    assert checkouts(orders) == [{"method": "h5", "provider": "wechatpay"}]
