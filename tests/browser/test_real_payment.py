"""A guest paying through WeChat Pay and Alipay as ``make run`` demos it: the orders service
opens the trade at the local payment emulator through the providers' SDKs, the buyer pays on
the emulator's cashier, its signed notification confirms the order, and the pay page moves
on to the certificate. On a large screen the gateway draws WeChat Pay's QR code, which the
buyer's phone scans (decoded from the screen) and opens; on a phone the guest follows the
link to Alipay's cashier and comes back."""
from __future__ import annotations

import io
import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS

pytestmark = pytest.mark.integration

SCENE = "cdcn-forum-2021"
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
IPHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
          "user_agent": ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                         "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")}
TEXTS = {
    "en-US": {"calculate": "Calculate my footprint",
              "name": "Name on the certificate and the leaderboard", "continue": "Continue to payment",
              "certificate": "See my certificate"},
    "zh-CN": {"calculate": "计算我的碳足迹",
              "name": "证书和排行榜上显示的名字", "continue": "去支付", "certificate": "查看我的证书"},
}


class Browser:
    """A browser context on the paying stack, collecting script and console errors."""

    def __init__(self, chromium, stack, locale: str, name: str, **options):
        self.context = chromium.new_context(locale=locale, base_url=stack.url, **options)
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()
        self.name = name
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     and not m.text.startswith("Failed to load resource") else None)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(self, step: str) -> None:
        self.page.screenshot(path=SCREENSHOTS / f"{self.name}-{step}.png", full_page=True)


@pytest.fixture
def browsers(chromium, paying_stack):
    opened = []

    def open_browser(locale: str, name: str, **options) -> Browser:
        opened.append(Browser(chromium, paying_stack, locale, name, **options))
        return opened[-1]

    yield open_browser
    for item in opened:
        item.context.close()


def place_order(guest: Browser, locale: str) -> None:
    t, page = TEXTS[locale], guest.page
    page.goto(f"/s/{SCENE}/form")
    # A conference's form opens the hotel (and the flight, which stays out without an origin).
    expect(page.locator("details.activity-toggle:has(#a-hotel-nights)")).to_have_attribute("open", "")
    page.locator("#a-hotel-nights").fill("2")
    page.get_by_role("button", name=t["calculate"]).click()
    page.wait_for_url(re.compile(r"/e/[0-9a-f-]+$"))
    page.get_by_label(t["name"]).fill(f"Payer {uuid.uuid4().hex[:4]}")
    page.locator(".project label").first.click()
    page.get_by_role("button", name=t["continue"]).click()
    page.wait_for_url(re.compile(r"/pay/ord_"))


def scan(locator) -> list[str]:
    """What a phone's camera reads from the QR code on the screen."""
    import zxingcpp
    from PIL import Image

    image = Image.open(io.BytesIO(locator.screenshot())).convert("L")
    return [result.text for result in zxingcpp.read_barcodes(image)]


def reaches_the_certificate(guest: Browser, locale: str) -> None:
    page = guest.page
    link = page.get_by_role("link", name=TEXTS[locale]["certificate"])
    expect(link).to_be_visible(timeout=90_000)
    expect(page.locator("ol.steps li.done")).to_have_count(3)
    guest.shot("certificate-link")
    link.click()
    page.wait_for_url(re.compile(r"/c/cert_"))


def test_a_guest_on_a_large_screen_pays_by_scanning_wechat_pays_qr_code(browsers, paying_stack):
    guest = browsers("en-US", "wechat-native", **DESKTOP)
    place_order(guest, "en-US")
    page = guest.page
    expect(page.locator(".pay-options")).to_contain_text("Scan this code with WeChat Pay")
    expect(page.get_by_role("link", name="Alipay")).to_be_visible()   # both providers: a choice
    qr = page.locator(".pay-qr svg.qr")
    expect(qr).to_be_visible()
    guest.shot("qr")
    code_url = scan(qr)
    assert len(code_url) == 1 and code_url[0].startswith(f"{paying_stack.emulator_url}/cashier/wechat/")

    buyer = browsers("zh-CN", "wechat-buyer", **IPHONE)   # the buyer's phone opens what it scanned
    buyer.page.goto(code_url[0])
    buyer.page.get_by_role("button", name=re.compile(r"Pay ¥")).click()
    expect(buyer.page.locator("body")).to_contain_text("支付成功 · Paid")

    reaches_the_certificate(guest, "en-US")
    assert guest.errors == []


def test_a_guest_on_a_phone_chooses_alipay_and_pays_on_its_cashier(browsers):
    guest = browsers("zh-CN", "alipay-wap", **IPHONE)
    place_order(guest, "zh-CN")
    page = guest.page
    page.get_by_role("link", name="支付宝").click()
    pay = page.get_by_role("link", name=re.compile(r"用支付宝付款 ¥"))
    expect(pay).to_be_visible()
    guest.shot("choose-alipay")
    pay.click()
    page.get_by_role("button", name=re.compile(r"Pay ¥")).click()   # Alipay's cashier (the emulator)
    page.wait_for_url(re.compile(r"/pay/ord_"))   # Alipay's return_url: back on the pay page
    reaches_the_certificate(guest, "zh-CN")
    assert guest.errors == []


WECHAT = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
          "user_agent": ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/126.0 Mobile Safari/537.36 MicroMessenger/8.0.49.2600(0x28003133) "
                         "WeChat/arm64 Weixin NetType/WIFI Language/zh_CN"),
          # WeChat's own WeixinJSBridge is no script of the page's: its stand-in, added by the
          # test below, and the cashier it opens over the page are not the page's CSP's to judge.
          "bypass_csp": True}


def test_a_guest_inside_wechat_signs_in_silently_and_pays_by_jsapi(browsers, paying_stack):
    guest = browsers("zh-CN", "wechat-jsapi", **WECHAT)
    place_order(guest, "zh-CN")   # the pay page went to WeChat's OAuth and came back with the openid
    page = guest.page
    assert not [c for c in guest.context.cookies() if c["name"] == "dd_wx_state"]   # used up
    assert [c for c in guest.context.cookies() if c["name"] == "dd_wx_openid"]
    pay = page.get_by_role("button", name=re.compile(r"用微信支付付款 ¥"))
    expect(pay).to_be_visible()
    page.add_script_tag(url=f"{paying_stack.emulator_url}/_emulator/weixin-jsbridge.js")
    guest.shot("jsapi")
    pay.click()
    page.frame_locator("iframe").get_by_role("button", name=re.compile(r"Pay ¥")).click()
    expect(pay).to_be_hidden()   # get_brand_wcpay_request:ok
    reaches_the_certificate(guest, "zh-CN")
    assert guest.errors == []
