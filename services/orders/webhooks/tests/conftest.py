"""Fixtures of the webhook tests: a receiving endpoint, webhooks allowed to reach it, known scenes."""
from __future__ import annotations

import pytest

from orders.ordering import calculator_client
from orders.webhooks.tests.support import Receiver


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def local_webhooks(monkeypatch):
    """What the tests' receiver needs: plain http to loopback, short retries, no jitter."""
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "1,2")
    monkeypatch.setenv("WEBHOOK_RETRY_JITTER", "0")
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "1")


@pytest.fixture
def scenes(monkeypatch):
    """The calculator knows scenes ``forum`` and ``expo``."""
    known = {"forum": "Forum", "expo": "Expo"}
    monkeypatch.setattr(calculator_client, "scene",
                        lambda slug: {"slug": slug, "name": known[slug]} if slug in known else None)
