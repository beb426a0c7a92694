"""A guest on a phone, in Chinese and in English: from the scene's page to a certificate
and their highlighted rank; the life footprint; an operator creating a scene."""
from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.stack import OPERATOR_KEY

pytestmark = pytest.mark.integration

SCENE = "cdcn-forum-2021"
TEXTS = {
    "zh-CN": {"cta": "我要碳中和", "flight": "飞机", "hotel": "酒店", "from": "出发机场（三字码）",
              "to": "到达机场（三字码）", "nights": "晚数", "calculate": "计算我的碳足迹",
              "empty": "请至少填写一项活动。", "invalid": "请检查标出的字段。",
              "name": "证书和排行榜上显示的名字", "organization": "单位（选填）", "continue": "去支付",
              "demo": "测试支付", "pay": "支付", "certificate": "查看我的证书",
              "rank": re.compile(r"我是第 [\d,]+ 名，共 [\d,]+ 人"),
              "leaderboard": "查看排行榜", "holder": "李雷", "me": "我",
              "together": "同行人数", "rf": "含辐射强迫", "rf_about": "航班与辐射强迫",
              "long_press": "长按图片保存或发送给朋友"},
    "en-US": {"cta": "I want to be carbon neutral", "flight": "Flight", "hotel": "Hotel",
              "from": "From (airport code)", "to": "To (airport code)", "nights": "Nights",
              "calculate": "Calculate my footprint", "empty": "Fill in at least one activity.",
              "invalid": "Please check the highlighted fields.",
              "name": "Name on the certificate and the leaderboard",
              "organization": "Organisation (optional)",
              "continue": "Continue to payment", "demo": "Sandbox — no money moves", "pay": "Pay",
              "certificate": "See my certificate",
              "rank": re.compile(r"I am No\. [\d,]+ of [\d,]+ at First China"),
              "leaderboard": "See the leaderboard", "holder": "Li Lei", "me": "me",
              "together": "Travelling together", "rf": "With radiative forcing",
              "rf_about": "Flights and radiative forcing",
              "long_press": "Long-press the image to save or send it"},
}


def pay_and_open_certificate(phone, t):
    page = phone.page
    expect(page.locator(".demo")).to_contain_text(t["demo"])
    phone.shot("05-pay")
    page.get_by_role("button", name=re.compile(t["pay"])).click()
    expect(page.locator("ol.steps li").first).to_have_class("done")
    certificate_link = page.get_by_role("link", name=t["certificate"])
    expect(certificate_link).to_be_visible(timeout=90_000)
    expect(certificate_link).to_be_focused()
    expect(page.locator("ol.steps li.done")).to_have_count(3)
    phone.shot("06-progress")
    certificate_link.click()
    page.wait_for_url(re.compile(r"/c/cert_"))


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_guest_goes_from_the_scene_to_a_certificate_and_a_rank(phone, stack, locale):
    t = TEXTS[locale]
    guest = phone(locale, f"guest-{locale[:2]}")
    page = guest.page
    holder = f"{t['holder']} {uuid.uuid4().hex[:4]}"

    page.goto(f"/s/{SCENE}")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN" if locale == "zh-CN" else "en")
    guest.shot("01-scene")
    page.get_by_role("link", name=t["cta"]).click()
    page.wait_for_url(f"**/s/{SCENE}/form")

    # Nothing filled in: the form says so without leaving the page.
    page.get_by_role("button", name=t["calculate"]).click()
    expect(page.locator(".form-error")).to_have_text(t["empty"])
    # An airport the calculator does not know: its 422 marks the field.
    page.locator("summary", has_text=t["flight"]).first.click()
    page.get_by_label(t["from"]).fill("ZZZ")
    page.get_by_label(t["to"]).fill("ctu")
    page.get_by_role("button", name=t["calculate"]).click()
    expect(page.get_by_label(t["from"])).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".form-error")).to_have_text(t["invalid"])
    page.get_by_label(t["from"]).fill("pek")
    expect(page.get_by_label(t["together"])).to_have_value("1")   # one guest's footprint
    page.locator("summary", has_text=t["hotel"]).first.click()
    page.get_by_label(t["nights"]).fill("2")
    guest.shot("02-form")
    page.get_by_role("button", name=t["calculate"]).click()

    page.wait_for_url(re.compile(r"/e/[0-9a-f-]+$"))
    expect(page.locator(".total strong")).to_contain_text("kg")
    expect(page.locator("svg.chart .bar")).to_have_count(2)  # flights and accommodation
    # Radiative forcing, said in plain words, with the totals with and without it.
    expect(page.locator(".rf-totals")).to_contain_text(t["rf"])
    expect(page.locator("#radiative-forcing h2")).to_have_text(t["rf_about"])
    expect(page.locator("#radiative-forcing .rf-note")).not_to_be_empty()
    expect(page.locator(".lines .rf-figures")).to_contain_text(t["rf"])
    guest.shot("03-result")

    page.get_by_label(t["name"]).fill(holder)
    page.get_by_label(t["organization"]).fill("Diandian Browser Test")
    page.locator(".project label").nth(1).click()
    expect(page.locator("input[name=project_id]").nth(1)).to_be_checked()
    page.locator("#neutralise").scroll_into_view_if_needed()
    guest.shot("04-project")
    page.get_by_role("button", name=t["continue"]).click()
    page.wait_for_url(re.compile(r"/pay/ord_"))

    pay_and_open_certificate(guest, t)
    expect(page.locator("h1")).to_have_text(holder)
    og_image = page.locator("meta[property='og:image']").get_attribute("content")
    card_url = re.compile(rf"{re.escape(stack.url)}/api/v1/certificates/cert_[^/]+/card\.png")
    assert card_url.fullmatch(og_image), og_image
    pdf = page.get_by_role("link", name=re.compile("PDF"))
    assert pdf.get_attribute("href").endswith("/pdf")
    verify_url = page.locator(".verify a").get_attribute("href")
    assert verify_url.startswith(f"{stack.url}/v/")
    expect(page.locator(".rank-card .rank-sentence").first).to_have_text(t["rank"])
    # Certificate -> share card (portrait PNG): the page's main image, for long-press saving.
    card = page.locator("img.share-card-image")
    card.scroll_into_view_if_needed()
    expect(card).to_have_js_property("complete", True)
    assert card.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [1080, 1920]
    assert og_image.endswith(card.get_attribute("src"))
    expect(page.locator(".share-card figcaption")).to_have_text(t["long_press"])
    guest.shot("07-certificate")

    # Without the Web Share API (WeChat's browser) Share opens the card full-screen with the hint.
    page.evaluate("delete Navigator.prototype.share; delete Navigator.prototype.canShare")
    page.get_by_role("button", name=re.compile("分享|Share")).click()
    viewer = page.locator(".card-viewer")
    expect(viewer).to_be_visible()
    expect(viewer.locator("p")).to_have_text(t["long_press"])
    guest.shot("07-share-card")
    viewer.get_by_role("button").click()
    expect(viewer).to_be_hidden()

    page.get_by_role("link", name=t["leaderboard"]).click()
    page.wait_for_url(re.compile(rf"/rankings\?scene={SCENE}"))
    mine = page.locator("ol.board li.me")
    expect(mine).to_have_count(1)
    expect(mine).to_contain_text(holder)
    expect(mine).to_have_attribute("aria-current", "true")
    expect(mine.locator(".tag")).to_have_text(t["me"])
    card = page.request.get(page.locator(".rank-card a[download]").get_attribute("href"))
    assert card.ok and card.headers["content-type"].startswith("image/svg+xml")
    guest.shot("08-leaderboard")

    # The verification page the certificate's QR code opens.
    page.goto(verify_url)
    expect(page.locator(".status.valid")).to_be_visible()
    expect(page.locator(".details")).to_contain_text(holder)
    guest.shot("09-verify")
    assert guest.errors == []


def test_language_switch_is_remembered(phone):
    guest = phone("zh-CN", "switch")
    page = guest.page
    page.goto(f"/s/{SCENE}")
    expect(page.get_by_role("link", name="我要碳中和")).to_be_visible()
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("link", name="I want to be carbon neutral")).to_be_visible()
    page.goto("/rankings")
    expect(page.locator("h1")).to_have_text("Rankings")
    page.get_by_role("link", name="中文").click()
    expect(page.locator("h1")).to_have_text("排行榜")


def test_life_footprint_flow(phone):
    guest = phone("en-US", "life")
    page = guest.page
    page.goto("/footprint")
    page.get_by_label("Electricity per month").fill("200")
    page.get_by_label("Province (power grid)").select_option("CN-SC")
    page.locator("#life-1-party_size").fill("2")                   # a household of two
    page.get_by_label("Natural gas per month").fill("15")
    page.get_by_label("Car distance per week").fill("120")
    page.get_by_label("Metro distance per week").fill("40")
    page.get_by_label("Return flights per year").fill("2")
    page.get_by_label("Diet").select_option("vegetarian")
    guest.shot("01-form")
    page.get_by_role("button", name="Calculate my footprint").click()

    page.wait_for_url(re.compile(r"/e/[0-9a-f-]+$"))
    expect(page.locator("h2", has_text="Compared with the average")).to_be_visible()
    expect(page.locator("svg.chart .bar")).to_have_count(4 + 2)  # four categories; you and the average
    comparison = re.compile(r"of the average yearly emissions per person in China|times the average")
    expect(page.get_by_text(comparison)).to_be_visible()
    # The province and the household the form sent, on the electricity line; the flights' RF.
    electricity = page.locator(".lines li", has_text="Electricity")
    expect(electricity).to_contain_text("Power grid: Sichuan")
    expect(electricity).to_contain_text("Shared by 2 people, 1/2 each")
    expect(page.locator(".rf-totals")).to_contain_text("With radiative forcing")
    guest.shot("02-result")
    page.get_by_label("Name on the certificate and the leaderboard").fill("Life Tester")
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url(re.compile(r"/pay/ord_"))
    pay_and_open_certificate(guest, TEXTS["en-US"])
    expect(page.locator("h1")).to_have_text("Life Tester")
    expect(page.locator(".rank-card .rank-sentence").first).to_have_text(
        re.compile(r"I am No\. [\d,]+ of [\d,]+ on the overall board"))
    guest.shot("07-certificate")
    assert guest.errors == []


def test_operator_logs_in_and_creates_a_scene(phone, driver):
    operator = phone("zh-CN", "operator")
    page = operator.page
    slug = f"expo-{uuid.uuid4().hex[:6]}"
    page.goto("/operator/scenes")
    page.wait_for_url(re.compile(r"/operator/login"))
    page.get_by_label("运营 API 密钥").fill("wrong-key")
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#api-key-error")).to_have_text("密钥无效。")
    page.get_by_label("运营 API 密钥").fill(OPERATOR_KEY)
    operator.shot("01-login")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(r"/operator/scenes$"))

    page.get_by_label(re.compile("^标识")).fill(slug)
    page.get_by_label("名称（中文）").fill("浏览器测试博览会")
    page.get_by_label(re.compile("^名称（英文）")).fill("Browser Test Expo")
    page.get_by_label("类型").select_option("scenic_spot")
    page.get_by_label(re.compile("^开始日期")).fill("2025-10-01")
    page.get_by_role("button", name="创建", exact=True).click()
    page.wait_for_url(re.compile(rf"created={slug}"))
    expect(page.get_by_role("status")).to_contain_text(slug)
    card = page.locator(f"#scene-{slug}")
    expect(card).to_contain_text("浏览器测试博览会")
    expect(card.locator("img.qr-image")).to_have_js_property("complete", True)
    assert card.locator("img.qr-image").evaluate("img => img.naturalWidth") > 0
    poster = card.get_by_role("link", name="海报（PDF）")
    assert poster.get_attribute("href") == f"/api/v1/scenes/{slug}/poster.pdf"
    card.scroll_into_view_if_needed()
    operator.shot("02-created")

    card.get_by_role("link", name="实时看板").click()
    page.wait_for_url(re.compile(rf"/operator/scenes/{slug}$"))
    expect(page.locator(".stats")).to_contain_text("估算排放")
    operator.shot("03-dashboard")
    page.goto(f"/operator/scenes/{SCENE}")
    expect(page.locator("svg.line-chart")).to_be_visible()
    operator.shot("04-dashboard-forum")
    assert driver.api("GET", f"/api/v1/scenes/{slug}").json()["name_en"] == "Browser Test Expo"
    assert operator.errors == []
