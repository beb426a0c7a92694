"""A guest who goes back from the pay page and submits the order form again (a new
Idempotency-Key): the pending order of the same estimate is the answer, its kilograms held
once; asking another project replaces it. Against a real calculator serving the estimates
over HTTP (in a thread), on SQLite and (when reachable) PostgreSQL."""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from sqlalchemy import select

from diandian_common.testing import GuestClient, free_port, migrated_sqlite_url
from diandian_common.uow import UnitOfWork
from orders.app import create_app
from orders.cli import seed_demo_projects
from orders.models import Order, Project


class _Quiet(WSGIRequestHandler):
    def log_message(self, *_args):
        pass


@pytest.fixture
def calculator(tmp_path, monkeypatch):
    """The calculator's API on a free port; returns a function making a trip estimate."""
    from calculator.app import create_app as create_calculator

    # Nothing listens there: the calculator's messages are not what is tested.
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    (tmp_path / "calc").mkdir()
    app = create_calculator(database_url=migrated_sqlite_url("calculator", tmp_path / "calc"))
    server = make_server("127.0.0.1", free_port(), app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CALCULATOR_URL", f"http://127.0.0.1:{server.server_port}")
    client = app.test_client()

    def estimate(nights: int = 2) -> str:
        response = client.post("/api/v1/estimates", json={
            "kind": "trip", "activities": [{"type": "hotel", "nights": nights}]})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    yield estimate
    server.shutdown()
    app.extensions["db"].dispose()


@pytest.fixture
def orders_app(database_url, calculator):
    app = create_app(database_url=database_url)
    with UnitOfWork(app.extensions["db"]) as uow:
        seed_demo_projects(uow)
    yield app
    app.extensions["db"].dispose()


def _projects(app) -> list[str]:
    with UnitOfWork(app.extensions["db"]) as uow:
        return [p.id for p in uow.session.scalars(select(Project).order_by(Project.code))]


def _reserved(app) -> int:
    with UnitOfWork(app.extensions["db"]) as uow:
        return sum(p.reserved_kg for p in uow.session.scalars(select(Project)))


def _place(app, guest: str, estimate_id: str, project_id: str, name: str = "Li Lei"):
    return GuestClient(app.test_client(), guest).post(
        "/api/v1/orders", headers={"Idempotency-Key": uuid.uuid4().hex},
        json={"project_id": project_id, "estimate_id": estimate_id, "participant": {"display_name": name}})


def test_submitting_again_returns_the_pending_order(orders_app, calculator):
    estimate_id = calculator()
    project = _projects(orders_app)[0]
    first = _place(orders_app, "guest-a", estimate_id, project)
    assert first.status_code == 201
    held = _reserved(orders_app)

    again = _place(orders_app, "guest-a", estimate_id, project, name="Li Lei (on the certificate)")
    assert again.status_code == 200
    body = again.get_json()
    assert body["id"] == first.get_json()["id"]
    assert (body["quantity_kg"], body["amount_fen"], body["status"]) == (
        first.get_json()["quantity_kg"], first.get_json()["amount_fen"], "pending_payment")
    assert body["participant"]["display_name"] == "Li Lei (on the certificate)"   # the name as last given
    assert _reserved(orders_app) == held                                         # held once

    # The new key answers the same again, as the Idempotency-Key protocol says.
    client = GuestClient(orders_app.test_client(), "guest-a")
    key = uuid.uuid4().hex
    payload = {"project_id": project, "estimate_id": estimate_id, "participant": {"display_name": "Li Lei"}}
    one = client.post("/api/v1/orders", headers={"Idempotency-Key": key}, json=payload)
    two = client.post("/api/v1/orders", headers={"Idempotency-Key": key}, json=payload)
    assert one.get_json()["id"] == two.get_json()["id"] == body["id"]
    assert two.headers.get("Idempotent-Replayed") == "true"


def test_another_guest_or_estimate_gets_an_order_of_its_own(orders_app, calculator):
    first_estimate, second_estimate = calculator(), calculator(nights=3)
    project = _projects(orders_app)[0]
    a = _place(orders_app, "guest-a", first_estimate, project).get_json()["id"]
    b = _place(orders_app, "guest-b", first_estimate, project).get_json()["id"]
    c = _place(orders_app, "guest-a", second_estimate, project).get_json()["id"]
    assert len({a, b, c}) == 3


def test_another_project_replaces_the_pending_order_and_releases_its_kilograms(orders_app, calculator):
    estimate_id = calculator()
    first_project, second_project = _projects(orders_app)[:2]
    first = _place(orders_app, "guest-a", estimate_id, first_project).get_json()
    second = _place(orders_app, "guest-a", estimate_id, second_project)
    assert second.status_code == 201
    assert second.get_json()["id"] != first["id"]
    assert _reserved(orders_app) == second.get_json()["quantity_kg"]
    with UnitOfWork(orders_app.extensions["db"]) as uow:
        old = uow.session.get(Order, first["id"])
        assert old.status == "cancelled"
        assert old.failure_reason == "replaced by a new order of the same estimate"


def test_a_paid_order_is_never_reused(orders_app, calculator):
    estimate_id = calculator()
    project = _projects(orders_app)[0]
    first = _place(orders_app, "guest-a", estimate_id, project).get_json()
    paid = GuestClient(orders_app.test_client(), "guest-a").post(f"/api/v1/orders/{first['id']}/payment")
    assert paid.status_code == 202
    again = _place(orders_app, "guest-a", estimate_id, project)
    assert again.status_code == 201 and again.get_json()["id"] != first["id"]


def test_two_submissions_at_once_make_one_order(orders_app, calculator):
    estimate_id = calculator()
    project = _projects(orders_app)[0]
    start = threading.Barrier(6)

    def submit(_):
        start.wait()
        return _place(orders_app, "guest-a", estimate_id, project)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(submit, range(6)))
    assert sorted(r.status_code for r in responses) == [200] * 5 + [201]
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert _reserved(orders_app) == responses[0].get_json()["quantity_kg"]
