"""Settlement to project owners against a real (temporary) database: the split in the
paying transaction, its reversal on every refund path, statements, payouts, the
reconciliation and the public ledger's money."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork
from orders import tasks
from orders.cli import DEMO_OWNERS
from orders.ledger import service as ledger_service
from orders.models import Order, Refund
from orders.ordering import service as ordering
from orders.settlement import service as settlement
from orders.settlement.tests.support import (
    GUEST,
    SECRET,
    complete,
    create_owner,
    create_project,
    deliver,
    event,
    lines,
    reconciled,
)


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
    paying = driver.api("POST", f"/api/v1/orders/{order['id']}/payment", guest=driver.guest_of(order))
    assert paying.status_code == 500
    assert driver.order(order["id"])["status"] == "pending_payment"
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
    view = driver.order(order["id"])
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
    view = driver.order(order["id"])
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
    assert driver.order(order["id"])["refund"] is None
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
    assert driver.order(order["id"])["certificate"]["revoked_at"] is None


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
