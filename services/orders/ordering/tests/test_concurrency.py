"""Many buyers racing for the last credits, on SQLite and (when reachable) PostgreSQL."""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from diandian_common.testing import (GuestClient)
from diandian_common.uow import UnitOfWork
from orders.app import create_app
from orders.catalogue import service as catalogue
from orders.ledger import service as ledger_service
from orders.models import Project, Retirement

BUYERS = 60
KG_EACH = 2
ISSUED = 100  # room for 50 buyers


def test_no_oversell_and_no_overlapping_serials(database_url):
    app = create_app(database_url=database_url)
    database = app.extensions["db"]
    with UnitOfWork(database) as uow:
        session = uow.session
        project = catalogue.add_project(uow, code="TEST-LAST", name="最后的信用", name_en="Last credits",
                                        type="forestry_carbon_sink", location="Chengdu", registry="CDCER",
                                        vintage=2024, price_fen_per_tonne=5000)
        catalogue.issue_block(session, project, 1, 60)
        catalogue.issue_block(session, project, 1001, 1040)  # a second block: ranges may span
        project_id = project.id

    start = threading.Barrier(BUYERS)

    def buy(i: int):
        client = GuestClient(app.test_client(), f"buyer-{i}")
        start.wait()
        return client.post("/api/v1/orders", headers={"Idempotency-Key": uuid.uuid4().hex}, json={
            "project_id": project_id, "quantity_kg": KG_EACH, "participant": {"display_name": f"Buyer {i}"}})

    with ThreadPoolExecutor(max_workers=BUYERS) as pool:
        responses = list(pool.map(buy, range(BUYERS)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == ISSUED // KG_EACH
    assert statuses.count(409) == BUYERS - ISSUED // KG_EACH
    assert all(r.get_json()["error"]["code"] == "insufficient_credits" for r in responses if r.status_code == 409)

    buyers = {r.get_json()["id"]: f"buyer-{i}" for i, r in enumerate(responses) if r.status_code == 201}
    order_ids = list(buyers)
    for order_id, buyer in buyers.items():
        assert GuestClient(app.test_client(), buyer).post(f"/api/v1/orders/{order_id}/payment").status_code == 202

    def retire(order_id: str):
        # Each delivery twice, concurrently: the duplicate must change nothing.
        for _ in range(2):
            with UnitOfWork(database) as uow:
                ledger_service.retire(uow, order_id)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(retire, order_ids))

    with UnitOfWork(database) as uow:
        session = uow.session
        project = session.get(Project, project_id)
        assert (project.issued_kg, project.reserved_kg, project.retired_kg) == (ISSUED, 0, ISSUED)
        ranges = sorted((r.serial_first, r.serial_last) for r in session.scalars(select(Retirement)))
        assert sum(last - first + 1 for first, last in ranges) == ISSUED
        for (_, last), (first, _) in zip(ranges, ranges[1:]):
            assert last < first, ranges
        assert all(1 <= f and (l <= 60 or f >= 1001) for f, l in ranges)
    database.dispose()


def test_twin_webhook_deliveries_pay_once(database_url, monkeypatch):
    """A provider delivering one event several times at once: one payment, one answer."""
    import json
    import time

    from sqlalchemy import func

    from orders.models import OutboxMessage, PaymentEvent
    from orders.payments.domain import signatures

    monkeypatch.setenv("PAYMENT_PROVIDER", "testpay")
    monkeypatch.setenv("PAYMENT_WEBHOOK_SECRET_TESTPAY", "whsec_race")
    app = create_app(database_url=database_url)
    database = app.extensions["db"]
    with UnitOfWork(database) as uow:
        session = uow.session
        project = catalogue.add_project(uow, code="TEST-WEBHOOK", name="网钩", name_en="Webhook",
                                        type="clean_transport", location="Chengdu", registry="CDCER",
                                        vintage=2024, price_fen_per_tonne=5000)
        catalogue.issue_block(session, project, 1, 100)
        project_id = project.id
    order = GuestClient(app.test_client(), "p").post("/api/v1/orders", headers={"Idempotency-Key": "race"}, json={
        "project_id": project_id, "quantity_kg": 10, "participant": {"display_name": "P"}}).get_json()
    raw = json.dumps({"id": "evt_race", "type": "payment.succeeded", "data": {
        "order_id": order["id"], "amount_fen": order["amount_fen"], "currency": "CNY",
        "transaction_id": "tp_race"}}).encode()
    twins = 12
    start = threading.Barrier(twins)

    def deliver(_):
        client = app.test_client()
        start.wait()
        return client.post("/api/v1/payments/testpay/webhook", data=raw, headers={
            "Content-Type": "application/json",
            "Payment-Signature": signatures.header_value("whsec_race", int(time.time()), raw)})

    with ThreadPoolExecutor(max_workers=twins) as pool:
        responses = list(pool.map(deliver, range(twins)))
    assert [r.status_code for r in responses] == [200] * twins
    assert {r.get_json()["action"] for r in responses} == {"paid"}
    with UnitOfWork(database) as uow:
        session = uow.session
        assert session.scalars(select(func.count()).select_from(PaymentEvent)).one() == 1
        assert session.scalars(select(func.count()).select_from(OutboxMessage)).one() == 1
    database.dispose()


def test_one_guests_racing_orders_for_several_projects_stay_under_the_unpaid_cap(database_url, monkeypatch):
    monkeypatch.setenv("ORDER_MAX_UNPAID_KG_PER_PARTICIPANT", "100")
    app = create_app(database_url=database_url)
    with UnitOfWork(app.extensions["db"]) as uow:
        project_ids = []
        for n in range(4):
            project = catalogue.add_project(uow, code=f"TEST-CAP-{n}", name="上限", name_en="Cap",
                                            type="forestry_carbon_sink", location="Chengdu", registry="CDCER",
                                            vintage=2024, price_fen_per_tonne=5000)
            catalogue.issue_block(uow.session, project, 1, 1000)
            project_ids.append(project.id)
    racers = 12
    start = threading.Barrier(racers)

    def buy(i: int):
        client = GuestClient(app.test_client(), "p_greedy", address=f"198.51.100.{i}")
        start.wait()
        return client.post("/api/v1/orders", headers={"Idempotency-Key": uuid.uuid4().hex}, json={
            "project_id": project_ids[i % 4], "quantity_kg": 30, "participant": {"display_name": "Greedy"}})

    with ThreadPoolExecutor(max_workers=racers) as pool:
        statuses = sorted(r.status_code for r in pool.map(buy, range(racers)))
    assert statuses == [201] * 3 + [409] * (racers - 3)  # 3 × 30 kg ≤ 100 < 4 × 30 kg
