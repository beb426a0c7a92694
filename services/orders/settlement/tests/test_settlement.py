"""Settlement to project owners against a real (temporary) database: the split in the
paying transaction, its reversal on every refund path, statements, payouts, the
reconciliation and the public ledger's money."""
from __future__ import annotations

import csv
import io
import json
import time
import uuid
from datetime import datetime, timezone

import pytest
from alembic import command
from sqlalchemy import create_engine, delete, select, text, update

from diandian_common.migrate import alembic_config, upgrade
from diandian_common.testing import Driver
from diandian_common.timestamps import as_utc, utcnow
from diandian_common.uow import UnitOfWork
from orders import tasks
from orders.app import create_app
from orders.cli import DEMO_OWNERS
from orders.ledger import service as ledger_service
from orders.models import Order, Project, Refund, SettlementEntry
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
        session = uow.session
        return settlement.reconcile(session)


# --- the split --------------------------------------------------------------------------

def test_demo_projects_have_owners_and_fee_rules(client):
    projects = {p["code"]: p for p in client.get("/api/v1/projects").get_json()["items"]}
    for code, company, _account, _contact, fee_bps, fee_min_fen in DEMO_OWNERS:
        assert projects[code]["owner"]["name"] == company
        assert (projects[code]["fee_bps"], projects[code]["fee_min_fen"]) == (fee_bps, fee_min_fen)
    assert projects["CDCER-XJ-PV"]["fee_bps"] == 0  # no fee is a valid rule


def test_seeding_again_keeps_an_operators_owner(app, client, operator):
    mine = create_owner(client, operator)
    project = next(p for p in client.get("/api/v1/projects").get_json()["items"] if p["code"] == "CDCER-PJ-BIOGAS")
    client.patch(f"/api/v1/projects/{project['id']}", headers=operator, json={"owner_id": mine["id"], "fee_bps": 0})
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    again = client.get(f"/api/v1/projects/{project['id']}").get_json()
    assert (again["owner"]["id"], again["fee_bps"]) == (mine["id"], 0)


def test_a_payment_is_split_in_the_transaction_that_marks_it_paid(client, database, operator, driver):
    owner = create_owner(client, operator)
    project = create_project(client, operator, owner_id=owner["id"], fee_bps=500, fee_min_fen=10)
    order = driver.place_order(project["id"], 13, GUEST)  # 13 kg at 60 fen/kg... 6000 fen/t: 78 fen
    assert order["amount_fen"] == 78
    driver.pay(order["id"])
    driver.pay(order["id"])  # paying twice splits once
    # 5 % of 78 is 3.9 → 4, raised to the 10 fen minimum
    assert lines(database, order["id"]) == [("capture", owner["id"], 13, 78, 10, 68)]


def test_no_split_no_payment(client, database, operator, monkeypatch, driver):
    """The split and the status change commit together: if one fails, neither happens."""
    project = create_project(client, operator)
    order = driver.place_order(project["id"], 13, GUEST)

    def broken(*_args, **_kwargs):
        raise RuntimeError("split failed")

    monkeypatch.setattr(settlement, "record_capture", broken)
    assert client.post(f"/api/v1/orders/{order['id']}/payment").status_code == 500
    assert client.get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "pending_payment"
    assert lines(database, order["id"]) == []


def test_the_provider_webhook_path_splits_the_same_way(client, database, operator, monkeypatch, driver):
    monkeypatch.setenv("PAYMENT_PROVIDER", "testpay")
    monkeypatch.setenv("PAYMENT_WEBHOOK_SECRET_TESTPAY", SECRET)
    project = create_project(client, operator, fee_bps=250)
    order = driver.place_order(project["id"], 1000, GUEST)  # 6000 fen
    body = event(order)
    assert deliver(client, body).get_json()["action"] == "paid"
    assert deliver(client, body).get_json()["action"] == "paid"  # the provider's retry: the first answer
    assert lines(database, order["id"]) == [("capture", None, 1000, 6000, 150, 5850)]


def test_a_failed_retirement_reverses_the_split(client, database, operator, driver):
    project = create_project(client, operator, fee_bps=500)
    order = driver.place_order(project["id"], 1000, GUEST)
    driver.pay(order["id"])
    with UnitOfWork(database) as uow:
        assert ledger_service.fail_retirement(uow, order["id"], "registry down")
    with UnitOfWork(database) as uow:
        assert not ledger_service.fail_retirement(uow, order["id"], "registry down")  # once
    assert lines(database, order["id"]) == [("capture", None, 1000, 6000, 300, 5700),
                                            ("refund", None, -1000, -6000, -300, -5700)]
    view = client.get(f"/api/v1/orders/{order['id']}").get_json()
    assert view["refund"]["amount_fen"] == 6000 and view["refund"]["reason"] == "registry down"
    assert reconciled(database).ok


def test_a_payment_after_cancellation_is_split_and_reversed_together(client, database, operator, monkeypatch, driver):
    monkeypatch.setenv("PAYMENT_PROVIDER", "testpay")
    monkeypatch.setenv("PAYMENT_WEBHOOK_SECRET_TESTPAY", SECRET)
    project = create_project(client, operator, fee_bps=500)
    order = driver.place_order(project["id"], 1000, GUEST)
    with UnitOfWork(database) as uow:
        session = uow.session
        session.get(Order, order["id"]).expires_at = utcnow()
    with UnitOfWork(database) as uow:
        session = uow.session
        assert ordering.expire_unpaid(uow) == 1
    assert deliver(client, event(order)).get_json()["action"] == "refunded"
    assert lines(database, order["id"]) == [("capture", None, 1000, 6000, 300, 5700),
                                            ("refund", None, -1000, -6000, -300, -5700)]
    result = reconciled(database)
    assert result.ok, result.difference


def test_a_revoked_certificate_with_refund_reverses_the_split_once(client, database, operator, driver):
    project = create_project(client, operator, fee_bps=500)
    order = driver.place_order(project["id"], 1000, GUEST)
    driver.pay(order["id"])
    complete(database, order["id"])
    message = {"v": 1, "order_id": order["id"], "certificate_id": "cert_1", "reason": "double counted",
               "refund": True}
    assert tasks.certificate_revoked.run(message) == "refunded"
    assert tasks.certificate_revoked.run(message) == "already_revoked"
    assert lines(database, order["id"])[1] == ("refund", None, -1000, -6000, -300, -5700)
    view = client.get(f"/api/v1/orders/{order['id']}").get_json()
    assert view["status"] == "completed" and view["certificate"]["revoked_at"]
    assert view["retirement"] is not None  # retired serials stay retired
    assert view["refund"]["reason"] == "certificate revoked: double counted"
    with UnitOfWork(database) as uow:
        session = uow.session
        assert len(session.scalars(select(Refund).where(Refund.order_id == order["id"])).all()) == 1
    assert reconciled(database).ok


def test_a_revocation_without_refund_keeps_the_split(client, database, operator, driver):
    project = create_project(client, operator)
    order = driver.place_order(project["id"], 13, GUEST)
    driver.pay(order["id"])
    complete(database, order["id"])
    message = {"v": 1, "order_id": order["id"], "certificate_id": "cert_1", "reason": "typo in the name"}
    assert tasks.certificate_revoked.run(message) == "revoked"
    assert [line[0] for line in lines(database, order["id"])] == ["capture"]
    assert client.get(f"/api/v1/orders/{order['id']}").get_json()["refund"] is None
    # ... and a later message asking for the refund still gets it, once
    assert tasks.certificate_revoked.run({**message, "refund": True}) == "refunded"
    assert [line[0] for line in lines(database, order["id"])] == ["capture", "refund"]


@pytest.mark.parametrize("message, action", [
    ({"order_id": "ord_missing", "certificate_id": "c", "reason": "r"}, "ignored"),
    ({"order_id": "ord_x"}, "invalid"),
    ({"order_id": "ord_x", "certificate_id": "c", "reason": ""}, "invalid"),
])
def test_revocations_that_change_nothing(client, message, action):
    assert tasks.certificate_revoked.run({"v": 1, **message}) == action


def test_a_revocation_of_another_certificate_changes_nothing(client, database, operator, driver):
    project = create_project(client, operator)
    order = driver.place_order(project["id"], 13, GUEST)
    driver.pay(order["id"])
    complete(database, order["id"], certificate_id="cert_real")
    assert tasks.certificate_revoked.run({"v": 1, "order_id": order["id"], "certificate_id": "cert_other",
                                          "reason": "x", "refund": True}) == "ignored"
    assert client.get(f"/api/v1/orders/{order['id']}").get_json()["certificate"]["revoked_at"] is None


# --- owners -----------------------------------------------------------------------------

def test_owners_are_managed_by_operators(client, operator):
    assert client.post("/api/v1/settlements/owners", json={}).status_code == 401
    owner = create_owner(client, operator, name="都江堰林业")
    assert client.post("/api/v1/settlements/owners", headers=operator, json={
        "name": "都江堰林业", "payout_account": "x", "contact": "y"}).get_json()["error"]["code"] == "owner_name_taken"
    bad = client.post("/api/v1/settlements/owners", headers=operator, json={"name": " ", "payout_account": "",
                                                                               "contact": "c" * 201})
    assert bad.status_code == 422 and set(bad.get_json()["error"]["fields"]) == {"name", "payout_account", "contact"}
    changed = client.patch(f"/api/v1/settlements/owners/{owner['id']}", headers=operator,
                           json={"payout_account": "CCB 6217 9999"})
    assert changed.status_code == 200 and changed.get_json()["payout_account"] == "CCB 6217 9999"
    listed = client.get("/api/v1/settlements/owners", headers=operator).get_json()["items"]
    assert owner["id"] in [o["id"] for o in listed]
    assert client.get("/api/v1/settlements/owners/own_nope", headers=operator).status_code == 404
    unknown = client.patch("/api/v1/projects/" + listed[0]["id"], headers=operator, json={"owner_id": "own_nope"})
    assert unknown.status_code == 404  # the project id is an owner's: no such project


def test_an_unknown_owner_cannot_be_attached(client, operator):
    project = create_project(client, operator)
    response = client.patch(f"/api/v1/projects/{project['id']}", headers=operator, json={"owner_id": "own_nope"})
    assert response.status_code == 422 and "owner_id" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("fields, bad", [({"fee_bps": 10_001}, "fee_bps"), ({"fee_bps": -1}, "fee_bps"),
                                         ({"fee_bps": 5.5}, "fee_bps"), ({"fee_min_fen": -1}, "fee_min_fen"),
                                         ({"low_inventory_threshold_kg": -1}, "low_inventory_threshold_kg")])
def test_fee_rules_are_validated(client, operator, fields, bad):
    project = create_project(client, operator)
    response = client.patch(f"/api/v1/projects/{project['id']}", headers=operator, json=fields)
    assert response.status_code == 422 and bad in response.get_json()["error"]["fields"]


def test_money_held_without_an_owner_goes_to_the_first_owner(client, database, operator, driver):
    project = create_project(client, operator)
    before = driver.place_order(project["id"], 13, GUEST)
    driver.pay(before["id"])
    first, second = create_owner(client, operator), create_owner(client, operator)
    client.patch(f"/api/v1/projects/{project['id']}", headers=operator, json={"owner_id": first["id"]})
    assert lines(database, before["id"])[0][1] == first["id"]
    client.patch(f"/api/v1/projects/{project['id']}", headers=operator, json={"owner_id": second["id"]})
    after = driver.place_order(project["id"], 13, GUEST)
    driver.pay(after["id"])
    assert lines(database, before["id"])[0][1] == first["id"]  # earned under the first owner
    assert lines(database, after["id"])[0][1] == second["id"]


def test_a_new_fee_applies_to_later_payments(client, database, operator, driver):
    project = create_project(client, operator, fee_bps=1000)
    first = driver.place_order(project["id"], 1000, GUEST)
    driver.pay(first["id"])
    client.patch(f"/api/v1/projects/{project['id']}", headers=operator, json={"fee_bps": 0})
    second = driver.place_order(project["id"], 1000, GUEST)
    driver.pay(second["id"])
    assert lines(database, first["id"])[0][4] == 600 and lines(database, second["id"])[0][4] == 0
    assert reconciled(database).ok  # each line is checked against the rule it was split with


# --- statements and payouts ----------------------------------------------------------------

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


def test_statements_sum_the_months_payments_less_refunds(client, database, operator):
    owner = create_owner(client, operator)
    project, orders = sell(client, database, operator, owner)
    # 6000 (fee 300) refunded; 1500 (fee 75); 78 (fee 4 → minimum 10)
    period = settlement.current_period()
    response = client.get(f"/api/v1/settlements?project={project['code']}&period={period}", headers=operator)
    assert response.status_code == 200, response.get_json()
    [item] = response.get_json()["items"]
    assert item["owner"]["id"] == owner["id"] and item["project_id"] == project["id"]
    assert (item["period"], item["status"]) == (period, "open")
    assert (item["orders"], item["refunds"], item["quantity_kg"]) == (2, 1, 263)
    assert (item["captured_fen"], item["refunded_fen"], item["gross_fen"]) == (7578, 6000, 1578)
    assert (item["fee_fen"], item["net_fen"], item["paid_fen"], item["due_fen"]) == (85, 1493, 0, 1493)
    assert item["gross_fen"] == item["fee_fen"] + item["net_fen"]
    paid_orders = [o for o in orders[1:]]
    assert item["gross_fen"] == sum(o["amount_fen"] for o in paid_orders)

    other_month = client.get(f"/api/v1/settlements?project={project['id']}&period=2019-12", headers=operator)
    assert other_month.get_json()["items"] == []
    by_owner = client.get(f"/api/v1/settlements?owner={owner['id']}", headers=operator).get_json()["items"]
    assert [i["project_id"] for i in by_owner] == [project["id"]]


def test_statements_as_csv_for_accountants(client, database, operator):
    owner = create_owner(client, operator)
    project, _ = sell(client, database, operator, owner)
    response = client.get(f"/api/v1/settlements?project={project['code']}",
                          headers={**operator, "Accept": "text/csv"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(rows[0]) == settlement.CSV_COLUMNS
    as_json = client.get(f"/api/v1/settlements?project={project['code']}", headers=operator).get_json()["items"]
    assert len(rows) == len(as_json) == 1
    assert {k: int(rows[0][k]) for k in ("gross_fen", "fee_fen", "net_fen", "orders", "quantity_kg")} == \
        {k: as_json[0][k] for k in ("gross_fen", "fee_fen", "net_fen", "orders", "quantity_kg")}
    assert rows[0]["owner_name"] == owner["name"] and rows[0]["project_code"] == project["code"]


@pytest.mark.parametrize("query, status, field", [
    ("period=2026-13", 422, "period"), ("period=26-01", 422, "period"), ("project=CDCER-NOPE", 404, None),
])
def test_statement_queries_are_validated(client, operator, query, status, field):
    response = client.get(f"/api/v1/settlements?{query}", headers=operator)
    assert response.status_code == status
    if field:
        assert field in response.get_json()["error"]["fields"]


def test_statements_need_the_operator_key(client, operator):
    assert client.get("/api/v1/settlements").status_code == 401
    assert client.get("/api/v1/settlements", headers={"X-API-Key": "nope"}).status_code == 403


def payout_body(owner, project, amount, reference=None, **extra):
    return {"owner_id": owner["id"], "project_id": project["id"], "period": PAST, "amount_fen": amount,
            "reference": reference or f"BANK-{uuid.uuid4().hex[:8]}", "paid_on": "2020-02-05", **extra}


def test_a_statement_is_paid_up_to_its_net_and_not_twice(client, database, operator):
    owner = create_owner(client, operator)
    project, _ = sell(client, database, operator, owner)
    open_month = client.post("/api/v1/settlements/payouts", headers=operator,
                             json={**payout_body(owner, project, 100), "period": settlement.current_period()})
    assert open_month.status_code == 409 and open_month.get_json()["error"]["code"] == "period_open"

    move_to_past(database, project["id"])
    over = client.post("/api/v1/settlements/payouts", headers=operator, json=payout_body(owner, project, 1494))
    assert over.status_code == 409 and over.get_json()["error"]["code"] == "exceeds_net"
    part = client.post("/api/v1/settlements/payouts", headers=operator,
                       json=payout_body(owner, project, 1000, reference="BANK-0001"))
    assert part.status_code == 201, part.get_json()
    again = client.post("/api/v1/settlements/payouts", headers=operator,
                        json=payout_body(owner, project, 1000, reference="BANK-0001"))
    assert again.status_code == 200 and again.get_json()["id"] == part.get_json()["id"]  # a retried request
    reused = client.post("/api/v1/settlements/payouts", headers=operator,
                         json=payout_body(owner, project, 493, reference="BANK-0001"))
    assert reused.status_code == 409 and reused.get_json()["error"]["code"] == "payout_reference_taken"
    rest = client.post("/api/v1/settlements/payouts", headers=operator, json=payout_body(owner, project, 493))
    assert rest.status_code == 201
    twice = client.post("/api/v1/settlements/payouts", headers=operator, json=payout_body(owner, project, 1))
    assert twice.status_code == 409 and twice.get_json()["error"]["code"] == "statement_paid"

    [item] = client.get(f"/api/v1/settlements?project={project['id']}&period={PAST}", headers=operator) \
        .get_json()["items"]
    assert (item["net_fen"], item["paid_fen"], item["due_fen"], item["status"]) == (1493, 1493, 0, "settled")
    payouts = client.get(f"/api/v1/settlements/payouts?project={project['code']}", headers=operator).get_json()
    assert [p["amount_fen"] for p in payouts["items"]] == [1000, 493]
    result = reconciled(database)
    assert result.ok, result.difference
    public = client.get(f"/api/v1/projects/{project['id']}").get_json()
    assert (public["owner_net_fen"], public["paid_to_owner_fen"], public["retired_kg"]) == (1493, 1493, 0)


@pytest.mark.parametrize("change, status, code", [
    ({"owner_id": "own_nope"}, 404, "not_found"),
    ({"project_id": "prj_nope"}, 404, "not_found"),
    ({"period": "2019-12"}, 404, "statement_not_found"),
    ({"paid_on": "2999-01-01"}, 422, "validation_error"),
    ({"amount_fen": 0}, 422, "validation_error"),
    ({"amount_fen": 1.5}, 422, "validation_error"),
    ({"reference": ""}, 422, "validation_error"),
])
def test_payouts_are_validated(client, database, operator, change, status, code):
    owner = create_owner(client, operator)
    project, _ = sell(client, database, operator, owner)
    move_to_past(database, project["id"])
    response = client.post("/api/v1/settlements/payouts", headers=operator,
                           json={**payout_body(owner, project, 10), **change})
    assert response.status_code == status and response.get_json()["error"]["code"] == code


def test_money_held_for_no_owner_cannot_be_paid_out(client, database, operator, driver):
    project = create_project(client, operator)
    order = driver.place_order(project["id"], 13, GUEST)
    driver.pay(order["id"])
    move_to_past(database, project["id"])
    owner = create_owner(client, operator)
    response = client.post("/api/v1/settlements/payouts", headers=operator, json=payout_body(owner, project, 10))
    assert response.status_code == 404  # the statement is the project's unowned one, not this owner's
    with UnitOfWork(database) as uow:
        session = uow.session
        found = settlement.statements(session, project=project["id"])
    assert [s.owner_id for s in found] == [None]


# --- reconciliation ----------------------------------------------------------------------

def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_verify_passes_after_sales_refunds_and_payouts(app, client, database, operator):
    owner = create_owner(client, operator)
    project, orders = sell(client, database, operator, owner)
    for order in orders[1:]:
        complete(database, order["id"])
    result = cli(app, "settlement", "verify")
    assert result.exit_code == 0, result.output
    assert "settlement ok" in result.output and "ledger 263 kg (0 kg settled, 263 kg pending)" in result.output
    move_to_past(database, project["id"])
    client.post("/api/v1/settlements/payouts", headers=operator, json=payout_body(owner, project, 1493))
    result = cli(app, "settlement", "verify")
    assert result.exit_code == 0 and "(263 kg settled, 0 kg pending)" in result.output, result.output
    over_api = client.get("/api/v1/settlements/verify", headers=operator).get_json()
    assert over_api["ok"] and over_api["captured_fen"] - over_api["refunded_fen"] == \
        over_api["owners_net_fen"] + over_api["platform_fees_fen"]


def test_verify_names_the_first_difference(app, client, database, operator, driver):
    project = create_project(client, operator, fee_bps=500)
    order = driver.place_order(project["id"], 1000, GUEST)
    driver.pay(order["id"])
    with UnitOfWork(database) as uow:
        session = uow.session
        session.execute(delete(SettlementEntry).where(SettlementEntry.order_id == order["id"]))
    result = cli(app, "settlement", "verify")
    assert result.exit_code == 1
    assert f"order {order['id']}: paid 6000 fen, but its payment was never split" in result.output
    assert client.get("/api/v1/settlements/verify", headers=operator).get_json()["ok"] is False


def test_verify_catches_a_refund_that_bypassed_the_split(app, client, database, operator, driver):
    project = create_project(client, operator)
    order = driver.place_order(project["id"], 13, GUEST)
    driver.pay(order["id"])
    with UnitOfWork(database) as uow:
        session = uow.session
        session.add(Refund(order_id=order["id"], amount_fen=order["amount_fen"], provider="sandbox",
                           provider_reference="manual", reason="refunded by hand"))
    result = cli(app, "settlement", "verify")
    assert result.exit_code == 1 and "its split was never reversed" in result.output


def test_the_cli_manages_owners_fees_statements_and_payouts(app, client, database, driver):
    created = cli(app, "owners", "create", "--name", "新津光伏", "--payout-account", "ABC 1", "--contact", "a@b.c")
    assert created.exit_code == 0, created.output
    owner = json.loads(created.output)
    project = next(p for p in client.get("/api/v1/projects").get_json()["items"] if p["code"] == "CDCER-XJ-PV")
    assert cli(app, "projects", "set-owner", "CDCER-XJ-PV", "新津光伏").exit_code == 0
    fee = cli(app, "projects", "set-fee", "CDCER-XJ-PV", "--bps", "300", "--min-fen", "2")
    assert fee.exit_code == 0 and json.loads(fee.output)["fee_bps"] == 300
    assert cli(app, "projects", "set-fee", "CDCER-XJ-PV", "--bps", "20000").exit_code != 0
    order = driver.place_order(project["id"], 1000, GUEST)  # 5500 fen
    driver.pay(order["id"])
    move_to_past(database, project["id"])
    table = cli(app, "settlement", "statements", "--project", "CDCER-XJ-PV")
    assert table.exit_code == 0 and "5500\t165\t5335" in table.output, table.output
    as_csv = cli(app, "settlement", "statements", "--period", PAST, "--csv")
    assert as_csv.output.splitlines()[0] == ",".join(settlement.CSV_COLUMNS)
    paid = cli(app, "settlement", "payout", "--owner", owner["id"], "--project", "CDCER-XJ-PV", "--period", PAST,
               "--amount-fen", "5335", "--reference", "CLI-1", "--paid-on", "2020-02-01")
    assert paid.exit_code == 0, paid.output
    assert json.loads(paid.output)["amount_fen"] == 5335
    refused = cli(app, "settlement", "payout", "--owner", owner["id"], "--project", "CDCER-XJ-PV", "--period",
                  PAST, "--amount-fen", "1", "--reference", "CLI-2", "--paid-on", "2020-02-01")
    assert refused.exit_code != 0 and "statement_paid" in refused.output
    assert "新津光伏" in cli(app, "owners", "list").output


# --- the public ledger ---------------------------------------------------------------------

def test_the_ledger_summary_shows_kilograms_and_money_per_project(client, database, operator):
    owner = create_owner(client, operator)
    project, orders = sell(client, database, operator, owner)
    for order in orders[1:]:
        complete(database, order["id"])
    move_to_past(database, project["id"])
    client.post("/api/v1/settlements/payouts", headers=operator, json=payout_body(owner, project, 1000))
    summary = client.get("/api/v1/ledger/summary").get_json()
    mine = next(i for i in summary["items"] if i["project_id"] == project["id"])
    assert mine == {"project_id": project["id"], "project_code": project["code"], "name": "测试林",
                    "name_en": "Test Forest", "owner": {"id": owner["id"], "name": owner["name"]},
                    "retired_kg": 263, "owner_net_fen": 1493, "paid_to_owner_fen": 1000}
    assert summary["total"]["retired_kg"] == sum(i["retired_kg"] for i in summary["items"])
    listed = next(p for p in client.get("/api/v1/projects").get_json()["items"] if p["id"] == project["id"])
    assert (listed["owner_net_fen"], listed["paid_to_owner_fen"]) == (1493, 1000)
    assert "payout_account" not in json.dumps(summary)  # owners' bank details stay with operators


# --- the migration -------------------------------------------------------------------------

def test_the_migration_splits_payments_captured_before_it(tmp_path):
    """An existing database keeps reconciling: earlier payments are split (no fee, no
    owner yet) and earlier refunds reversed."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade("orders", url, revision="0002")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (id, code, name, name_en, type, location, registry, vintage, "
                          "price_fen_per_tonne, issued_kg, reserved_kg, retired_kg, created_at) VALUES "
                          "('prj_old', 'OLD-1', '旧', 'Old', 'forestry', 'Chengdu', 'CDCER', 2020, 6000, 100, 0, 0, "
                          "'2026-10-01 00:00:00')"))
        for order_id, status, paid_at in (("ord_paid", "paid", "'2026-10-31 16:30:00'"),
                                          ("ord_failed", "failed", "'2026-10-02 00:00:00'"),
                                          ("ord_late", "cancelled", "NULL"), ("ord_unpaid", "cancelled", "NULL")):
            conn.execute(text(
                "INSERT INTO orders (id, status, project_id, quantity_kg, requested_kg, amount_fen, currency, "
                "participant_id, display_name, payment_provider, created_at, expires_at, paid_at, updated_at) "
                f"VALUES ('{order_id}', '{status}', 'prj_old', 10, '10', 60, 'CNY', 'p', 'P', 'sandbox', "
                f"'2026-10-01 00:00:00', '2026-10-01 00:30:00', {paid_at}, '2026-10-01 00:00:00')"))
        for order_id in ("ord_failed", "ord_late"):
            conn.execute(text("INSERT INTO refunds (order_id, amount_fen, provider, reason, created_at) VALUES "
                              f"('{order_id}', 60, 'sandbox', 'r', '2026-11-03 00:00:00')"))
    engine.dispose()
    upgrade("orders", url)
    app = create_app(database_url=url)
    with UnitOfWork(app.extensions["db"]) as uow:
        session = uow.session
        found = {(e.order_id, e.kind): (e.period, e.gross_fen, e.fee_fen, e.owner_id)
                 for e in session.scalars(select(SettlementEntry))}
        booked = session.scalars(select(SettlementEntry.booked_at).where(
            SettlementEntry.order_id == "ord_paid")).one()
        result = settlement.reconcile(session)
        project = session.get(Project, "prj_old")
        assert (project.fee_bps, project.fee_min_fen, project.owner_id) == (0, 0, None)
    app.extensions["db"].dispose()
    assert found == {
        ("ord_paid", "capture"): ("2026-11", 60, 0, None),  # 00:30 on 1 November in Shanghai
        ("ord_failed", "capture"): ("2026-10", 60, 0, None),
        ("ord_failed", "refund"): ("2026-11", -60, 0, None),
        ("ord_late", "capture"): ("2026-11", 60, 0, None),
        ("ord_late", "refund"): ("2026-11", -60, 0, None),
    }
    assert result.ok, result.difference
    assert as_utc(booked) == datetime(2026, 10, 31, 16, 30, tzinfo=timezone.utc)
    command.downgrade(alembic_config("orders", url), "0002")  # and back


# --- PostgreSQL ------------------------------------------------------------------------------

@pytest.mark.postgres
def test_settlement_and_webhook_bookkeeping_on_postgresql(monkeypatch, tmp_path, operator, driver):
    """The same journal, statements, payouts and delivery claims on PostgreSQL (row locks,
    SUM over BIGINT as numeric)."""
    from diandian_common.testing import postgres_available, temporary_postgres_database
    from orders.cli import seed_demo_projects
    from orders.webhooks import service as webhooks
    if not postgres_available():
        pytest.skip("no PostgreSQL server reachable")
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    with temporary_postgres_database("orders") as url:
        monkeypatch.setenv("ORDERS_DATABASE_URL", url)
        app = create_app(database_url=url)
        database = app.extensions["db"]
        try:
            with UnitOfWork(database) as uow:
                seed_demo_projects(uow)
            client = app.test_client()
            owner = create_owner(client, operator)
            project, orders = sell(client, database, operator, owner)
            endpoint = client.post("/api/v1/webhooks", headers=operator, json={
                "url": "https://hooks.example.com/x", "events": ["order.paid"]}).get_json()
            paid_after = driver.place_order(project["id"], 1000, GUEST)
            driver.pay(paid_after["id"])
            move_to_past(database, project["id"])
            [item] = client.get(f"/api/v1/settlements?project={project['id']}", headers=operator).get_json()["items"]
            assert (item["gross_fen"], item["fee_fen"], item["net_fen"]) == (7578, 385, 7193)
            paid = client.post("/api/v1/settlements/payouts", headers=operator,
                               json=payout_body(owner, project, item["net_fen"]))
            assert paid.status_code == 201, paid.get_json()
            with UnitOfWork(database) as uow:
                session = uow.session
                result = settlement.reconcile(session)
                [delivery] = session.scalars(select(webhooks.WebhookDelivery)).all()
                now, current = utcnow(), webhooks.settings()
                assert delivery.endpoint_id == endpoint["id"]
                assert webhooks.claim(session, delivery.id, now, current).attempt == 1
                assert webhooks.dispatch_due(session, now, current) == 0
            assert result.ok, result.difference
        finally:
            database.dispose()
