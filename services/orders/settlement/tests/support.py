"""What the settlement tests share: owners, projects, sales, notifications, the CLI."""
from __future__ import annotations

import json
import time
import uuid

from sqlalchemy import select, update

from diandian_common.testing import Driver
from diandian_common.uow import UnitOfWork
from orders.ledger import service as ledger_service
from orders.models import SettlementEntry
from orders.ordering import service as ordering
from orders.payments.domain import signatures
from orders.settlement import service as settlement

SECRET = "whsec_settlement_tests"


PAST = "2020-01"  # a month long over: its statement can be paid


GUEST = {"id": "p-1", "display_name": "Guest"}


def create_owner(client, operator, name=None):
    response = client.post("/api/v1/settlements/owners", headers=operator, json={
        "name": name or f"青城山林场 {uuid.uuid4().hex[:6]}", "payout_account": "ICBC 6222 0000 1111",
        "contact": "cfo@qingcheng.example"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def create_project(client, operator, issued=10_000, **fields):
    body = {"code": f"CDCER-T{uuid.uuid4().hex[:6].upper()}", "name": "测试林", "name_en": "Test Forest",
            "type": "forestry_carbon_sink", "location": "Chengdu", "vintage": 2025, "price_fen_per_tonne": 6000,
            **fields}
    response = client.post("/api/v1/projects", headers=operator, json=body)
    assert response.status_code == 201, response.get_json()
    project = response.get_json()
    client.post(f"/api/v1/projects/{project['id']}/issuances", headers=operator, json={"first": 1, "last": issued})
    return project


def event(order):
    """A testpay notification that the order's payment succeeded."""
    return {"id": f"evt_{uuid.uuid4().hex}", "type": "payment.succeeded",
            "data": {"order_id": order["id"], "amount_fen": order["amount_fen"], "currency": "CNY",
                     "transaction_id": f"tp_{uuid.uuid4().hex[:12]}"}}


def deliver(client, body):
    raw = json.dumps(body).encode()
    return client.post("/api/v1/payments/testpay/webhook", data=raw, headers={
        "Content-Type": "application/json",
        "Payment-Signature": signatures.header_value(SECRET, int(time.time()), raw)})


def complete(database, order_id, certificate_id="cert_1"):
    with UnitOfWork(database) as uow:
        assert ledger_service.retire(uow, order_id)
    with UnitOfWork(database) as uow:
        assert ordering.complete(uow, **{"order_id": order_id, "certificate_id": certificate_id,
                                            "verify_code": "c", "pdf_url": "http://x/p", "verify_url": "http://x/v"})


def lines(database, order_id):
    with UnitOfWork(database) as uow:
        session = uow.session
        return [(e.kind, e.owner_id, e.quantity_kg, e.gross_fen, e.fee_fen, e.net_fen) for e in session.scalars(
            select(SettlementEntry).where(SettlementEntry.order_id == order_id).order_by(SettlementEntry.id))]


def move_to_past(database, project_id, period=PAST):
    """Book the project's lines in a month that is over (statements are paid after it)."""
    with UnitOfWork(database) as uow:
        session = uow.session
        session.execute(update(SettlementEntry).where(SettlementEntry.project_id == project_id).values(period=period))


def reconciled(database):
    with UnitOfWork(database) as uow:
        return settlement.reconcile(uow)


def sell(client, database, operator, owner, kgs=(1000, 250, 13), refund_first=True, fee_bps=500, fee_min_fen=10):
    """A project of ``owner`` with paid orders of ``kgs``, the first one refunded."""
    driver = Driver(client)
    project = create_project(client, operator, owner_id=owner["id"], fee_bps=fee_bps, fee_min_fen=fee_min_fen)
    orders = []
    for kg in kgs:
        order = driver.place_order(project["id"], kg, GUEST)
        driver.pay(order["id"])
        orders.append(order)
    if refund_first:
        with UnitOfWork(database) as uow:
            ledger_service.fail_retirement(uow, orders[0]["id"], "registry refused")
    return project, orders


def payout_body(owner, project, amount, reference=None, **extra):
    return {"owner_id": owner["id"], "project_id": project["id"], "period": PAST, "amount_fen": amount,
            "reference": reference or f"BANK-{uuid.uuid4().hex[:8]}", "paid_on": "2020-02-05", **extra}


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))
