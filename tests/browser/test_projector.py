"""The organiser's projector screen (issue 21) on a 1920×1080 and a 1280×720 screen, against the
session's real stack: an operator logs in, opens a scene's projector screen, and it fills the
screen without scrollbars, with counters readable from the back of the room, the QR code to
join and the top of the board. The Chinese 1920×1080 screen is saved as
test-artifacts/screenshots/dashboard-projector-zh.png (docs/screenshots keeps a copy: a test run
never changes tracked files)."""
from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS
from tests.stack import OPERATOR_KEY

pytestmark = pytest.mark.integration

GUESTS = [("王小明", False, 1200), ("Li Lei", False, 350), ("张三丰", True, 80)]


@pytest.fixture(scope="module")
def neutralised_scene(driver):
    """A new scene where three guests neutralised a fixed amount each, none estimating a
    footprint there: the "estimated 0 / neutralised 3" the screen must explain."""
    slug = f"projector-{uuid.uuid4().hex[:6]}"
    created = driver.api("POST", "/api/v1/scenes", operator=True, json={
        "slug": slug, "name": "绿色发展论坛 2025", "name_en": "Green Development Forum 2025",
        "type": "conference"})
    assert created.status_code == 201, created.text
    orders = [driver.place_and_pay_order(kg=kg, scene=slug, participant=driver.new_participant(
        "projector", display_name=name, mask_name=masked)) for name, masked, kg in GUESTS]
    for order in orders:
        driver.wait_completed(order["id"])
    driver.wait_for(lambda: (driver.api("GET", "/api/v1/rankings", params={"scene": slug}).json() or {})
                    .get("total") == len(GUESTS), 60, what="the scene's board to count every guest")
    return slug


def screen(chromium, stack, width: int, height: int, locale: str):
    context = chromium.new_context(locale=locale, base_url=stack.url,
                                   viewport={"width": width, "height": height}, device_scale_factor=1)
    context.set_default_timeout(20_000)
    return context


def log_in(page, target: str) -> None:
    page.goto(target)
    page.wait_for_url(re.compile(r"/operator/login"))
    page.locator("#api-key").fill(OPERATOR_KEY)
    page.locator("form button[type='submit']").click()
    page.wait_for_url(re.compile(re.escape(target) + "$"))


def fits_the_screen(page) -> None:
    size = page.evaluate("""() => ({scrollHeight: document.documentElement.scrollHeight,
        scrollWidth: document.documentElement.scrollWidth, innerHeight: window.innerHeight,
        innerWidth: window.innerWidth})""")
    assert size["scrollHeight"] <= size["innerHeight"], size
    assert size["scrollWidth"] <= size["innerWidth"], size


def test_projector_screen_fills_a_1920_by_1080_screen(chromium, stack, neutralised_scene):
    context = screen(chromium, stack, 1920, 1080, "zh-CN")
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        target = f"/operator/scenes/{neutralised_scene}/projector"
        log_in(page, target)
        counters = page.locator(".projector-counters .counter-value")
        expect(counters.first).to_have_text(str(len(GUESTS)))
        expect(counters.nth(1)).to_have_text(re.compile(r"^1\.63\s*t$"))   # 1,630 kg: in tonnes
        expect(page.locator(".projector-sentence")).to_contain_text("有嘉宾未在本活动估算碳足迹就完成了中和")
        public = stack.driver.api("GET", "/api/v1/rankings", params={"scene": neutralised_scene}).json()
        names = [item["display_name"] for item in public["items"]]
        assert names[0] == "王小明" and names[2].startswith("张") and "三丰" not in names[2]  # masked
        # Names as the public board shows them.
        expect(page.locator(".projector-board li .name")).to_have_text(names)
        qr = page.locator("img.projector-qr")
        expect(qr).to_have_js_property("complete", True)
        assert qr.evaluate("img => img.naturalWidth") > 0
        box = qr.bounding_box()
        assert box and box["width"] >= 400 and box["y"] + box["height"] <= 1080
        font_size = counters.first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
        assert font_size >= 96, font_size
        fits_the_screen(page)
        expect(page.locator(".js-fullscreen")).to_be_visible()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "dashboard-projector-zh.png")
        # Live: a new order shows without a reload, on the next refresh.
        driver = stack.driver
        driver.place_and_pay_order(kg=20, scene=neutralised_scene, complete=True,
                                   participant=driver.new_participant("projector", display_name="Late Guest"))
        expect(counters.first).to_have_text(str(len(GUESTS) + 1), timeout=60_000)
        page.get_by_role("link", name="浅色背景").click()
        expect(page.locator("body")).to_have_class(re.compile("theme-light"))
        fits_the_screen(page)
        page.screenshot(path=SCREENSHOTS / "projector-zh-light.png")
        assert errors == []
    finally:
        context.close()


def test_projector_screen_fits_a_1280_by_720_screen_in_english(chromium, stack, neutralised_scene):
    context = screen(chromium, stack, 1280, 720, "en-US")
    try:
        page = context.new_page()
        target = f"/operator/scenes/{neutralised_scene}/projector"
        log_in(page, target)
        expect(page.locator(".projector-join h2")).to_have_text("Scan to take part")
        expect(page.locator(".projector-sentence")).to_contain_text(
            "Guests neutralised without estimating a footprint for this event")
        fits_the_screen(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "projector-en-1280.png")
    finally:
        context.close()
