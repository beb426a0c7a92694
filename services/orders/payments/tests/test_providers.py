"""The sandbox provider only in development: production (DIANDIAN_ENV=production) has no
default provider, refuses the sandbox for new orders, and the orders API refuses to start
with it."""
from __future__ import annotations

import secrets

import pytest

from diandian_common import deployment
from diandian_common.errors import ApiError
from diandian_common.testing import GuestClient
from orders.app import create_app
from orders.payments import providers


def strong() -> str:
    return secrets.token_urlsafe(48)


@pytest.fixture
def production(monkeypatch, tmp_path):
    """A production environment the orders API starts in, paid through testpay."""
    for name, value in {"DIANDIAN_ENV": "production", "INTERNAL_API_SECRET": strong(),
                        "METRICS_TOKEN": strong(), "REDIS_URL": f"redis://:{strong()}@redis:6379/0",
                        "PAYMENT_PROVIDER": "testpay", "PAYMENT_WEBHOOK_SECRET_TESTPAY": strong(),
                        "VAR_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    for name in ("DATABASE_URL", "ORDERS_DATABASE_URL", "CELERY_BROKER_URL", "WORKER_METRICS_PORT"):
        monkeypatch.delenv(name, raising=False)


def refusal() -> str:
    with pytest.raises(ApiError) as raised:
        providers.for_new_orders()
    assert (raised.value.status, raised.value.code) == (503, "payment_unavailable")
    return raised.value.message


def test_development_pays_in_the_sandbox_by_default(monkeypatch):
    monkeypatch.delenv("DIANDIAN_ENV", raising=False)
    monkeypatch.delenv("PAYMENT_PROVIDER", raising=False)
    assert providers.for_new_orders().name == "sandbox"


def test_production_has_no_default_provider(production, monkeypatch):
    monkeypatch.delenv("PAYMENT_PROVIDER")
    assert "PAYMENT_PROVIDER is not set" in refusal()


def test_production_refuses_the_sandbox_for_new_orders(production, monkeypatch):
    monkeypatch.setenv("PAYMENT_PROVIDER", "sandbox")
    assert "refused in production" in refusal()
    # An order placed in the sandbox before keeps its provider (its refunds still work).
    assert providers.provider("sandbox").name == "sandbox"


def test_production_takes_a_signed_provider(production):
    assert providers.for_new_orders().name == "testpay"


@pytest.mark.parametrize("value", [None, "sandbox"])
def test_the_orders_api_refuses_to_start_with_the_sandbox_or_no_provider(production, monkeypatch, tmp_path,
                                                                         value):
    if value is None:
        monkeypatch.delenv("PAYMENT_PROVIDER")
    else:
        monkeypatch.setenv("PAYMENT_PROVIDER", value)
    with pytest.raises(deployment.InsecureDeployment, match="PAYMENT_PROVIDER"):
        create_app(f"sqlite:///{tmp_path / 'orders.db'}")


def test_the_orders_api_starts_in_production_with_a_signed_provider(production, tmp_path):
    assert create_app(f"sqlite:///{tmp_path / 'orders.db'}").name == "orders"


def test_a_sandbox_order_left_from_a_demo_is_never_paid_in_production(client, monkeypatch):
    guest = GuestClient(client, "p_demo")
    project_id = client.get("/api/v1/projects").get_json()["items"][0]["id"]
    order = guest.post("/api/v1/orders", headers={"Idempotency-Key": "demo"}, json={
        "project_id": project_id, "quantity_kg": 1, "participant": {"display_name": "Demo"}}).get_json()
    assert order["payment"]["provider"] == "sandbox"
    monkeypatch.setenv("DIANDIAN_ENV", "production")  # the same database, now in production
    refused = guest.post(f"/api/v1/orders/{order['id']}/payment")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "sandbox_disabled"
    assert guest.get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "pending_payment"
