"""My certificates (/me), on phones in Chinese and English: a guest pays for a footprint and
gets a certificate; on a later visit the header's link leads to /me, which lists it with
their rank and footprint; a code from /me moves the list to a second phone (a new browser
context, its own cookies), and the first phone keeps it."""
from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.test_guest_flow import SCENE, TEXTS, pay_and_open_certificate

pytestmark = pytest.mark.integration

ME_TEXTS = {
    "zh-CN": {"me": "我的证书", "move": "转移到另一台设备", "empty": "这里还没有内容", "code": "代码",
              "use": "使用代码", "keeps": "这台设备仍保留访问权限", "ranks": "我的排名",
              "footprints": "我的碳足迹"},
    "en-US": {"me": "My certificates", "move": "Move to another device", "empty": "Nothing here yet",
              "code": "Code", "use": "Use the code", "keeps": "This device keeps its access",
              "ranks": "My ranks", "footprints": "My footprints"},
}
OTHER = {"zh-CN": "en-US", "en-US": "zh-CN"}


def estimate_and_pay(guest, t, holder) -> str:
    """A trip footprint placed as this phone (its cookie), paid through the pages; the certificate id."""
    page = guest.page
    page.goto(f"/s/{SCENE}")
    reply = page.request.post("/api/v1/estimates", data={
        "kind": "trip", "scene": SCENE, "activities": [{"type": "rail", "distance_km": 350}]})
    assert reply.status == 201, reply.text()
    page.goto(f"/e/{reply.json()['id']}")
    page.get_by_label(t["name"]).fill(holder)
    page.get_by_role("button", name=t["continue"]).click()
    page.wait_for_url(re.compile(r"/pay/ord_"))
    pay_and_open_certificate(guest, t)
    return page.url.rsplit("/c/", 1)[1]


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_me_lists_the_certificate_on_a_later_visit_and_moves_to_a_second_phone(phone, stack, locale):
    t, m = TEXTS[locale], ME_TEXTS[locale]
    first = phone(locale, f"me-{locale[:2]}")
    certificate_id = estimate_and_pay(first, t, f"{t['holder']} {uuid.uuid4().hex[:4]}")

    # A later visit: a new tab of the same phone, from the home page, through the header.
    first.page.close()
    first.page = page = first.context.new_page()
    page.on("console", first._console)
    page.on("pageerror", lambda e: first.errors.append(str(e)))
    page.goto("/")
    page.get_by_role("navigation").get_by_role("link", name=m["me"]).click()
    page.wait_for_url(re.compile(r"/me$"))
    listed = page.locator(f"[data-certificate='{certificate_id}']")
    expect(listed).to_be_visible()
    expect(listed.get_by_role("link").first).to_have_attribute("href", f"/c/{certificate_id}")
    pdf = f"/api/v1/certificates/{certificate_id}/pdf"
    expect(listed.locator("a[download]")).to_have_attribute("href", pdf)
    expect(page.locator("#ranks-title")).to_have_text(m["ranks"])
    expect(page.locator(".rank-card .rank-sentence")).to_be_visible()
    expect(page.locator(".mine-footprints li a").first).to_have_attribute("href", re.compile(r"^/e/"))
    first.shot("01-me")  # test-artifacts/screenshots/me-zh-01-me.png: docs/screenshots/me-zh.png's source

    page.get_by_role("button", name=m["move"]).click()
    code = page.locator("[data-transfer-code]")
    expect(code).to_have_text(re.compile(r"^[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$"))
    expect(page.locator("#transfer")).to_contain_text(m["keeps"])
    expect(page.locator("#transfer svg.qr")).to_be_visible()
    first.shot("02-code")

    second = phone(OTHER[locale], f"me-second-{locale[:2]}")
    other = ME_TEXTS[OTHER[locale]]
    second.page.goto("/me")
    expect(second.page.locator("h2", has_text=other["empty"])).to_be_visible()
    second.page.get_by_label(other["code"], exact=True).fill(code.inner_text().lower())
    second.page.get_by_role("button", name=other["use"]).click()
    second.page.wait_for_url(re.compile(r"/me$"))
    expect(second.page.locator(f"[data-certificate='{certificate_id}']")).to_be_visible()
    second.shot("03-second-phone")

    page.reload()  # the first phone keeps its access
    expect(page.locator(f"[data-certificate='{certificate_id}']")).to_be_visible()
    assert first.errors == [] and second.errors == []
