"""Fixtures of the gateway's tests: echoing stand-in services and a gateway environment on
them (``upstreams``, ``gateway_env``), and for the page tests scripted stand-ins, the gateway
app on them and its test client (``services``, ``app``, ``client``)."""
from __future__ import annotations

import pytest

from diandian_common.config import SERVICES
from diandian_common.testing import free_port, migrated_sqlite_url
from gateway.app import create_app
from gateway.testing import Upstream
from gateway.tests.pages_support import (
    CAR,
    CERTIFICATE,
    COMPLETED_ORDER,
    ESTIMATE,
    HOSTILE,
    LIFE_ESTIMATE,
    ME,
    OPERATOR_KEY,
    ORDER,
    PER_CAPITA,
    PROJECTS,
    PUBLIC,
    SCENE,
    STANDING,
    FakeService,
    create_scene,
    operator_orders,
    rankings,
)


@pytest.fixture(scope="module")
def upstreams():
    """Every service as a stand-in that echoes what it received (gateway.testing.Upstream)."""
    running = {s: Upstream(s) for s in SERVICES}
    yield running
    for upstream in running.values():
        upstream.stop()


# Settings a test of the gateway's own rules starts without (it sets what it tests).
GATEWAY_SETTINGS = ("GATEWAY_BEHIND_PROXY", "GATEWAY_PROXY_HOPS", "GATEWAY_HSTS_MAX_AGE",
                    "GATEWAY_TRUST_FORWARDED", "GATEWAY_ALLOWED_HOSTS", "GATEWAY_SECRET_KEY")


@pytest.fixture
def gateway_env(upstreams, tmp_path, monkeypatch):
    """The environment of a gateway on the echoing stand-ins: its own key database, no Redis
    (rate limits off), none of the proxy settings. Returns ``monkeypatch`` to set more."""
    for name, upstream in upstreams.items():
        monkeypatch.setenv(f"{name.upper()}_URL", upstream.url)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    monkeypatch.setenv("GATEWAY_DATABASE_URL", migrated_sqlite_url("gateway", tmp_path))
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")
    for variable in GATEWAY_SETTINGS:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


@pytest.fixture
def services(monkeypatch, tmp_path):
    fakes = {name: FakeService(name) for name in SERVICES}
    for name, fake in fakes.items():
        monkeypatch.setenv(f"{name.upper()}_URL", fake.url)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    for limit in ("RATE_LIMIT_ORDERS", "RATE_LIMIT_READS", "RATE_LIMIT_WRITES",
                  "RATE_LIMIT_PROVIDER_WEBHOOKS", "RATE_LIMIT_PER_ADDRESS"):
        monkeypatch.setenv(limit, "off")  # the gateway's own tests cover the limits
    monkeypatch.setenv("GATEWAY_DATABASE_URL", migrated_sqlite_url("gateway", tmp_path))
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC)
    calculator, orders, certificates, ranking = (fakes[s] for s in SERVICES)
    calculator.on("GET", "/api/v1/scenes", (200, {"items": [SCENE]}))
    calculator.on("GET", "/api/v1/scenes/forum", (200, SCENE))
    calculator.on("POST", "/api/v1/scenes", create_scene)
    calculator.on("GET", "/api/v1/scenes/forum/footprint", (200, {
        "scene": "forum", "participants": 42, "estimates": 50, "total_kg": 1068.0, "average_kg": 25.4,
        "categories": ESTIMATE["categories"]}))
    calculator.on("GET", "/api/v1/estimates/est-1", (200, ESTIMATE))
    calculator.on("GET", "/api/v1/estimates/est-life", (200, LIFE_ESTIMATE))
    calculator.on("GET", "/api/v1/factors", (200, {"version": "2025.1", "items": [CAR, PER_CAPITA]}))
    orders.on("GET", "/api/v1/projects", (200, {"items": PROJECTS}))
    orders.on("GET", "/api/v1/orders/ord_1", (200, ORDER))
    orders.on("GET", "/api/v1/orders/ord_done", (200, COMPLETED_ORDER))
    orders.on("GET", "/api/v1/orders", operator_orders)
    certificates.on("GET", "/api/v1/certificates/cert_1", (200, CERTIFICATE))
    certificates.on("GET", "/api/v1/certificates/verify/CODE.sig", lambda req: (200, {
        "valid": True, "revoked": False,
        "certificate": {**CERTIFICATE,
                        "holder": "<***" if req.args.get("mask_holder") == "true" else HOSTILE}}))
    certificates.on("GET", "/api/v1/certificates/verify/REVOKED.sig", (200, {
        "valid": False, "revoked": True,
        "certificate": {**CERTIFICATE, "status": "revoked", "revoked_at": "2025-09-08T00:00:00+00:00"}}))
    ranking.on("GET", "/api/v1/rankings", rankings)
    ranking.on("GET", f"/api/v1/rankings/participants/{ME}", (200, STANDING))
    yield fakes
    for fake in fakes.values():
        fake.stop()


@pytest.fixture
def app(services):
    app = create_app()
    app.extensions["keys"].ensure_operator(OPERATOR_KEY)
    return app


@pytest.fixture
def client(app):
    return app.test_client()
