"""Statements, payouts, the reconciliation, the CLI and the migration of the settlement."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import pytest
from alembic import command
from sqlalchemy import create_engine, delete, select, text, update

from diandian_common.migrate import alembic_config, upgrade
from diandian_common.timestamps import as_utc, utcnow
from diandian_common.uow import UnitOfWork
from orders.app import create_app
from orders.models import Project, Refund, SettlementEntry
from orders.settlement import service as settlement
from orders.settlement.tests.support import (
    GUEST,
    PAST,
    cli,
    complete,
    create_owner,
    create_project,
    move_to_past,
    payout_body,
    reconciled,
    sell,
)


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
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == settlement.CSV_COLUMNS
    as_json = client.get(f"/api/v1/settlements?project={project['code']}", headers=operator).get_json()["items"]
    assert len(rows) == len(as_json) == 1
    assert {k: int(rows[0][k]) for k in ("gross_fen", "fee_fen", "net_fen", "orders", "quantity_kg")} == \
        {k: as_json[0][k] for k in ("gross_fen", "fee_fen", "net_fen", "orders", "quantity_kg")}
    assert rows[0]["owner_name"] == owner["name"] and rows[0]["project_code"] == project["code"]


HOSTILE_NAMES = ('=HYPERLINK("http://evil")', "+cmd", "@SUM(A1)", "-2+3", "\t=1+1")


def test_the_csv_runs_no_formula_keeps_numbers_and_opens_as_utf8(app, client, database, operator):
    """Issue 17: owner names, payout accounts and project codes are chosen by outsiders."""
    owners = {}
    for i, name in enumerate(HOSTILE_NAMES):
        response = client.post("/api/v1/settlements/owners", headers=operator, json={
            "name": name, "payout_account": f"@ACCT{i}", "contact": "x@y.example"})
        assert response.status_code == 201, response.get_json()
        owner = response.get_json()
        owners[owner["id"]] = owner
        sell(client, database, operator, owner, kgs=(1000,), refund_first=False)
    chinese = create_owner(client, operator, name="青城山林场（成都）有限公司")
    owners[chinese["id"]] = chinese
    project, orders = sell(client, database, operator, chinese)  # 6000 fen refunded, 1500 + 78 kept
    with UnitOfWork(database) as uow:  # a code no schema accepts, as if written to the database directly
        uow.session.execute(update(Project).where(Project.id == project["id"]).values(code="-2+3"))
        # the refunded payment was captured last month: this month's statement is the refund alone
        uow.session.execute(update(SettlementEntry).where(SettlementEntry.order_id == orders[0]["id"],
                                                          SettlementEntry.kind == "capture").values(period=PAST))

    response = client.get("/api/v1/settlements", headers={**operator, "Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    data = response.data
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")  # every record ends CRLF
    assert data.count(b"\r\n") == 1 + len(HOSTILE_NAMES) + 2  # header, one row each, two months of one

    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == settlement.CSV_COLUMNS  # no BOM stuck to "period"
    by_owner = {}
    for row in rows:
        by_owner.setdefault(row["owner_id"], []).append(row)
    for i, name in enumerate(HOSTILE_NAMES):
        [row] = next(r for oid, r in by_owner.items() if owners[oid]["name"] == name)
        assert row["owner_name"] == "'" + name and row["payout_account"] == f"'@ACCT{i}"
        assert row["gross_fen"] == "6000" and row["project_code"].startswith("CDCER-")
    for row in rows:
        for column in ("owner_name", "payout_account", "project_code", "status", "period"):
            assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r")), (column, row[column])

    last_month, this_month = sorted(by_owner[chinese["id"]], key=lambda r: r["period"])
    for row in (last_month, this_month):
        assert row["owner_name"] == "青城山林场（成都）有限公司" and row["project_code"] == "'-2+3"
    assert (last_month["period"], last_month["gross_fen"], last_month["refunded_fen"]) == (PAST, "6000", "0")
    # the refund alone: negative numbers are written as numbers, not neutralised into text
    assert {k: int(this_month[k]) for k in ("orders", "quantity_kg", "gross_fen", "fee_fen", "net_fen")} == \
        {"orders": 1, "quantity_kg": 263 - 1000, "gross_fen": 1578 - 6000, "fee_fen": 85 - 300, "net_fen": 1493 - 5700}
    assert b",-4422," in data and b"'-" not in data.replace(b"'-2+3", b"")

    # the CLI writes the very same bytes (BOM and CRLF included)
    from_cli = cli(app, "settlement", "statements", "--csv")
    assert from_cli.exit_code == 0, from_cli.output
    assert from_cli.stdout_bytes == data


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
        found = settlement.statements(uow, project=project["id"])
    assert [s.owner_id for s in found] == [None]


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
    assert table.exit_code == 0 and "5500\t0\t165\t5335" in table.output, table.output
    as_csv = cli(app, "settlement", "statements", "--period", PAST, "--csv")
    assert as_csv.stdout_bytes.decode("utf-8-sig").split("\r\n")[0] == ",".join(settlement.CSV_COLUMNS)
    assert "新津光伏" in as_csv.stdout_bytes.decode("utf-8-sig")
    paid = cli(app, "settlement", "payout", "--owner", owner["id"], "--project", "CDCER-XJ-PV", "--period", PAST,
               "--amount-fen", "5335", "--reference", "CLI-1", "--paid-on", "2020-02-01")
    assert paid.exit_code == 0, paid.output
    assert json.loads(paid.output)["amount_fen"] == 5335
    refused = cli(app, "settlement", "payout", "--owner", owner["id"], "--project", "CDCER-XJ-PV", "--period",
                  PAST, "--amount-fen", "1", "--reference", "CLI-2", "--paid-on", "2020-02-01")
    assert refused.exit_code != 0 and "statement_paid" in refused.output
    assert "新津光伏" in cli(app, "owners", "list").output


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
        # 0008: earlier lines name the provider their order was paid through, with no provider fee.
        assert {(e.provider, e.provider_fee_fen, e.provider_fee_bps)
                for e in session.scalars(select(SettlementEntry))} == {("sandbox", 0, 0)}
        booked = session.scalars(select(SettlementEntry.booked_at).where(
            SettlementEntry.order_id == "ord_paid")).one()
        result = settlement.reconcile(uow)
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
                result = settlement.reconcile(uow)
                [delivery] = session.scalars(select(webhooks.WebhookDelivery)).all()
                now, current = utcnow(), webhooks.settings()
                assert delivery.endpoint_id == endpoint["id"]
                assert webhooks.claim(uow, delivery.id, now, current).attempt == 1
                assert webhooks.dispatch_due(uow, now, current) == 0
            assert result.ok, result.difference
        finally:
            database.dispose()
