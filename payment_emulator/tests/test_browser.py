"""A JSAPI payment in a real browser (Playwright driving Debian's Chromium, skipped without
it): a merchant page outside WeChat loads the emulator's WeixinJSBridge stand-in, invokes
``getBrandWCPayRequest`` with the parameters signed by the SDK, the buyer presses "Pay" in the
cashier that opens over the page, and the page's callback gets
``get_brand_wcpay_request:ok`` while the merchant receives the notification."""
from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

import pytest
from flask import Flask
from wechatpayv3 import WeChatPayType

from payment_emulator.tests.helpers import Server, wechat_client

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

MERCHANT_PAGE = """<!doctype html><meta charset="utf-8"><title>merchant</title>
<script src="%(emulator)s/_emulator/weixin-jsbridge.js"></script>
<button id="buy">Buy</button><output id="result"></output>
<script>
  document.getElementById("buy").addEventListener("click", function () {
    WeixinJSBridge.invoke("getBrandWCPayRequest", %(invoke)s, function (answer) {
      document.getElementById("result").textContent = answer.err_msg;
    });
  });
</script>"""


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    playwright_api = pytest.importorskip("playwright.sync_api",
                                         reason="the playwright package is not installed")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.parametrize("press, outcome", [("pay", "ok"), ("cancel", "cancel")])
def test_the_jsbridge_stand_in_pays_a_jsapi_order_from_a_merchant_page(emulator, chromium, press, outcome):
    from playwright.sync_api import expect

    client = wechat_client(emulator.env, pay_type=WeChatPayType.JSAPI)
    number, notify = f"ord_{secrets.token_hex(8)}", f"js-{press}"
    code, body = client.pay(description="JSAPI in a browser", out_trade_no=number, amount={"total": 66},
                            payer={"openid": "o_browser_buyer"}, notify_url=emulator.receiver.url(notify))
    assert code == 200
    invoke = {"appId": emulator.env["WECHATPAY_APPID"], "timeStamp": str(int(time.time())),
              "nonceStr": secrets.token_hex(16), "package": f"prepay_id={json.loads(body)['prepay_id']}",
              "signType": "RSA"}
    invoke["paySign"] = client.sign([invoke["appId"], invoke["timeStamp"], invoke["nonceStr"],
                                     invoke["package"]])
    merchant = Flask("merchant")
    html = MERCHANT_PAGE % {"emulator": emulator.url, "invoke": json.dumps(invoke)}
    merchant.add_url_rule("/", "page", lambda: html)
    site = Server(merchant)
    page = chromium.new_page()
    try:
        page.goto(site.url)
        page.click("#buy")
        cashier = page.frame_locator("iframe")
        if press == "pay":
            cashier.get_by_role("button", name="Pay ¥0.66").click()
            expect(cashier.get_by_text("支付成功 · Paid")).to_be_visible()
        else:
            cashier.get_by_text("取消 · Cancel").click()
        expect(page.locator("#result")).to_have_text(f"get_brand_wcpay_request:{outcome}", timeout=10_000)
        expect(page.locator("iframe")).to_have_count(0)
    finally:
        page.close()
        site.stop()
    if press == "pay":
        [call] = emulator.receiver.wait(notify)
        resource = client.callback(call.headers, call.body)["resource"]
        assert resource["out_trade_no"] == number and resource["payer"]["openid"] == "o_browser_buyer"
    else:
        assert json.loads(client.query(out_trade_no=number)[1])["trade_state"] == "NOTPAY"
