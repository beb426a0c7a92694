"""The guest's pay page names the sandbox for what it is, in both languages, whatever the
page's language: "测试支付 · Sandbox — no money moves". Rendered by the real gateway against
a stand-in orders service (gateway/tests/pages_support.py), like the gateway's page tests."""
from __future__ import annotations

import re

import pytest

from diandian_common.config import SERVICES
from diandian_common.testing import free_port, migrated_sqlite_url
from gateway.app import create_app
from gateway.tests.pages_support import ORDER, PUBLIC, SCENE, FakeService, page

LABEL = "测试支付 · Sandbox — no money moves"


@pytest.fixture
def client(monkeypatch, tmp_path):
    fakes = {name: FakeService(name) for name in SERVICES}
    for name, fake in fakes.items():
        monkeypatch.setenv(f"{name.upper()}_URL", fake.url)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")   # nothing listens
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", migrated_sqlite_url("gateway", tmp_path))
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.delenv("DIANDIAN_ENV", raising=False)
    fakes["calculator"].on("GET", "/api/v1/scenes/forum", (200, SCENE))
    fakes["orders"].on("GET", "/api/v1/orders/ord_1", (200, ORDER))
    fakes["orders"].on("GET", "/api/v1/orders/ord_tp", (200, {
        **ORDER, "id": "ord_tp", "payment": {"provider": "testpay", "checkout_url": f"{PUBLIC}/pay/ord_tp"}}))
    yield create_app().test_client()
    for fake in fakes.values():
        fake.stop()


def label_of(html: str) -> str:
    """The text of the page's demo note, tags removed."""
    (note,) = re.findall(r'<p class="demo"[^>]*>(.*?)</p>', html, flags=re.DOTALL)
    return " ".join(re.sub(r"<[^>]+>", " ", note).split())


@pytest.mark.parametrize("lang", [None, "en-US,en;q=0.8"])
def test_a_sandbox_order_is_labelled_in_both_languages(client, lang):
    assert ORDER["payment"]["provider"] == "sandbox"
    html = page(client, "/pay/ord_1", lang=lang)
    assert label_of(html).startswith(LABEL)
    assert '<span lang="zh-CN">测试支付</span>' in html and '<span lang="en">Sandbox — no money moves</span>' in html


def test_another_providers_order_has_no_sandbox_label(client):
    html = page(client, "/pay/ord_tp", lang="en")
    assert "Sandbox" not in html and "测试支付" not in html
