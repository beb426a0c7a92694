"""The orders API and the local WeChat Pay / Alipay emulator (payment_emulator) talking over
real HTTP both ways, for the tests of real payment protocols: the orders API opens trades at
the emulator, and the emulator's signed notifications reach the orders API on its port.

A test module takes ``emulator`` (one per module) and builds its ``orders`` fixture with
:func:`orders_on_a_port`; :class:`Emulated` drives both sides as a guest would."""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from diandian_common.testing import GuestClient, migrated_sqlite_url
from diandian_common.uow import UnitOfWork
from orders.app import create_app
from orders.cli import seed_demo_projects
from payment_emulator.app import create_app as create_emulator
from payment_emulator.keys import merchant_key_set
from payment_emulator.tests.helpers import Server, free_port

GUEST_ADDRESS = "203.0.113.9"


@dataclass
class Emulator:
    server: Server
    env: dict  # the merchant's settings the orders service reads (WECHATPAY_*, ALIPAY_*)
    state_dir: Path  # the emulator's keys (payment_emulator.keys.platform_keys)

    def control(self, method: str, path: str, **kwargs) -> requests.Response:
        """The emulator's test controls (``/_emulator/…``: pay, notify, trades, reset)."""
        return requests.request(method, f"{self.server.url}/_emulator/{path}", timeout=10, **kwargs)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator[Emulator]:
    root = tmp_path_factory.mktemp("emulator")
    port = free_port()
    env = merchant_key_set(root / "merchant", root / "state", f"http://127.0.0.1:{port}")
    app = create_emulator(root / "state", notify_schedule=(0.0, 0.2, 0.5), refund_seconds=0.2)
    server = Server(app, port)
    yield Emulator(server, env, root / "state")
    server.stop()


@dataclass
class Emulated:
    """The orders app (its test client for our requests) and the emulator, as one guest."""

    app: object
    emulator: Emulator
    guest: str

    def client(self) -> GuestClient:
        return GuestClient(self.app.test_client(), self.guest, GUEST_ADDRESS)

    def place(self, kg: int = 12, display_name: str = "王芳") -> dict:
        project = self.client().get("/api/v1/projects").get_json()["items"][0]
        placed = self.client().post("/api/v1/orders", headers={"Idempotency-Key": uuid.uuid4().hex}, json={
            "project_id": project["id"], "quantity_kg": kg, "participant": {"display_name": display_name}})
        assert placed.status_code == 201, placed.get_json()
        return placed.get_json()

    def checkout(self, order_id: str, **body):
        """``POST /orders/{id}/checkout`` as the guest; following an Alipay wap link as the
        buyer's browser would (Alipay opens that trade when the link is opened)."""
        opened = self.client().post(f"/api/v1/orders/{order_id}/checkout", json=body)
        if opened.status_code == 200 and "pay_url" in opened.get_json():
            assert requests.get(opened.get_json()["pay_url"], timeout=10).status_code == 200
        return opened

    def view(self, order_id: str) -> dict:
        """The order as its guest sees it."""
        return self.client().get(f"/api/v1/orders/{order_id}").get_json()

    def status(self, order_id: str) -> str:
        return self.view(order_id)["status"]


@contextlib.contextmanager
def orders_on_a_port(emulator: Emulator, tmp_path: Path, monkeypatch, guest: str,
                     **settings: str) -> Iterator[Emulated]:
    """The orders API on a real port (where the emulator notifies it) with both providers
    enabled, the emulator's trades forgotten (each test's refunds are numbered from 1, and a
    refund id is the provider's out_refund_no), and ``settings`` set in the environment."""
    assert emulator.control("POST", "reset").status_code == 200
    port = free_port()
    for name, value in {**emulator.env, "PAYMENT_PROVIDERS": "wechatpay,alipay",
                        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "VAR_DIR": str(tmp_path),
                        **settings}.items():
        monkeypatch.setenv(name, value)
    for name in ("PAYMENT_FEE_BPS_WECHATPAY", "PAYMENT_FEE_BPS_ALIPAY"):
        if name not in settings:
            monkeypatch.delenv(name, raising=False)
    url = migrated_sqlite_url("orders", tmp_path)
    monkeypatch.setenv("ORDERS_DATABASE_URL", url)
    app = create_app(database_url=url)
    with UnitOfWork(app.extensions["db"]) as uow:
        seed_demo_projects(uow)
    server = Server(app, port)
    try:
        yield Emulated(app, emulator, guest)
    finally:
        server.stop()
        app.extensions["db"].dispose()
