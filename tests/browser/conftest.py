"""Browser tests: Playwright driving Debian's Chromium (``/usr/bin/chromium``) against the
session's real stack, on a phone-sized screen. Playwright's own browser download is not
used; without Chromium (``scripts/setup.sh`` installs it when it can) these tests skip.
Screenshots of every step go to ``test-artifacts/screenshots/``."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1, "is_mobile": True,
         "has_touch": True}


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install it (Debian: apt-get install chromium, "
                    "which scripts/setup.sh does when run as root) or set CHROMIUM_PATH")
    playwright_api = pytest.importorskip("playwright.sync_api",
                                         reason="the playwright package is not installed")
    playwright_api.expect.set_options(timeout=20_000)  # a page may wait on a worker
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Phone:
    """A fresh phone (its own cookies) in one language, collecting script errors and
    console errors (a Content-Security-Policy violation is one; an HTTP error status the
    test provoked on purpose is not) and saving screenshots."""

    def __init__(self, browser, locale: str, base_url: str, name: str):
        self.context = browser.new_context(locale=locale, base_url=base_url, **PHONE)
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()
        self.name = name
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def _console(self, message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def shot(self, step: str) -> None:
        self.page.screenshot(path=SCREENSHOTS / f"{self.name}-{step}.png", full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def phone(chromium, stack, request):
    """``phone(locale, name)`` → a :class:`Phone` on the stack; closed after the test."""
    opened = []

    def open_phone(locale: str, name: str) -> Phone:
        opened.append(Phone(chromium, locale, stack.url, name))
        return opened[-1]

    yield open_phone
    for item in opened:
        item.close()


@pytest.fixture(scope="module")
def paying_stack(tmp_path_factory):
    """A stack as ``make run`` starts it (scripts/run.sh's DIANDIAN_PAYMENT_DEMO=emulator): the
    payment emulator stands in for WeChat Pay and Alipay, both enabled."""
    import requests

    from diandian_common.testing import wait_for
    from tests.stack import Stack

    stack = Stack(tmp_path_factory.mktemp("paying-stack"), {"DIANDIAN_PAYMENT_DEMO": "emulator"})
    stack.start(timeout=180)
    stack.emulator_url = f"http://127.0.0.1:{stack.port + 8}"   # start-stack.sh's default port

    def emulator_up() -> bool:
        try:
            return requests.get(f"{stack.emulator_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(emulator_up, 60, what="the payment emulator to answer")
        yield stack
    finally:
        stack.stop()
