"""Orders API and workflow steps against a real (temporary) SQLite database."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from diandian_common.testing import Driver, GuestClient
from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork
from orders.ledger import service as ledger_service
from orders.ledger.domain import chain as ledger
from orders.models import LedgerEntry, Order, OutboxMessage, Project, Retirement
from orders.ordering import service as ordering


def first_project(client):
    return client.get("/api/v1/projects").get_json()["items"][0]


GUEST_ID = "p-1"  # the participant id the gateway vouches for (the guest's cookie)
WANG_FANG = {"display_name": "王芳", "organization": "成都某公司"}


def order_body(project_id, kg=10, **extra):
    return {"project_id": project_id, "quantity_kg": kg, "participant": dict(WANG_FANG), **extra}


def guest(client):
    """The test client as the guest of GUEST_ID."""
    return GuestClient(client, GUEST_ID)


def post_order(client, body, key=None):
    return guest(client).post("/api/v1/orders", json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex})


def test_projects_list_the_spec_fields(client):
    items = client.get("/api/v1/projects").get_json()["items"]
    assert len(items) >= 3
    for item in items:
        assert {"id", "code", "name", "type", "location", "registry", "vintage",
                "price_fen_per_tonne", "available_kg"} <= set(item)
        assert item["available_kg"] == item["issued_kg"] - item["reserved_kg"] - item["retired_kg"]


def test_order_reserves_and_prices(client):
    project = first_project(client)
    response = post_order(client, order_body(project["id"], "2.5"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "pending_payment"
    assert body["quantity_kg"] == 3
    assert body["amount_fen"] == -(-3 * project["price_fen_per_tonne"] // 1000)
    assert body["payment"]["provider"] == "sandbox"
    after = first_project(client)
    assert after["reserved_kg"] == project["reserved_kg"] + 3
    assert after["available_kg"] == project["available_kg"] - 3


def test_idempotency_key_replays_and_conflicts(client):
    project = first_project(client)
    first = post_order(client, order_body(project["id"]), key="same")
    again = post_order(client, order_body(project["id"]), key="same")
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first_project(client)["reserved_kg"] == project["reserved_kg"] + 10  # reserved once
    other = post_order(client, order_body(project["id"], 11), key="same")
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "idempotency_conflict"


def test_idempotency_key_is_required(client):
    project = first_project(client)
    response = client.post("/api/v1/orders", json=order_body(project["id"]))
    assert response.status_code == 422
    assert "Idempotency-Key" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("body, field", [
    ({"quantity_kg": 1, "participant": {"display_name": "b"}}, "project_id"),
    ({"project_id": "x", "participant": {"display_name": "b"}}, "quantity_kg"),
    ({"project_id": "x", "quantity_kg": -1, "participant": {"display_name": "b"}}, "quantity_kg"),
    ({"project_id": "x", "quantity_kg": "lots", "participant": {"display_name": "b"}}, "quantity_kg"),
    ({"project_id": "x", "quantity_kg": 1, "participant": {}}, "participant"),
    ({"project_id": "x", "quantity_kg": 1, "participant": {"display_name": "b"},
      "scene": "Not A Slug!"}, "scene"),
    ({"project_id": "unknown", "quantity_kg": 1, "participant": {"display_name": "b"}}, "project_id"),
])
def test_invalid_orders_name_the_field(client, body, field):
    response = post_order(client, body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]


def test_unreadable_json_is_400(client):
    response = client.post("/api/v1/orders", data="{", content_type="application/json",
                           headers={"Idempotency-Key": "k"})
    assert response.status_code == 400
    assert response.get_json() == {"error": {"code": "invalid_json", "message": "the request body is not valid JSON"}}


def test_more_than_available_is_409(client, monkeypatch):
    monkeypatch.setenv("ORDER_MAX_KG_GUEST", str(10**8))  # the fair-inventory caps are not what is tested
    project = first_project(client)
    response = post_order(client, order_body(project["id"], project["available_kg"] + 1))
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "insufficient_credits"


def test_unknown_order_is_404(client):
    assert client.get("/api/v1/orders/ord_nope").status_code == 404
    assert guest(client).post("/api/v1/orders/ord_nope/payment").status_code == 404


def pay_and_retire(client, database, kg=10, **extra):
    order = Driver(client).place_and_pay_order(kg=kg, participant={"id": GUEST_ID, **WANG_FANG}, **extra)
    with UnitOfWork(database) as uow:
        assert ledger_service.retire(uow, order["id"]) is True
    return order


def test_payment_queues_retirement_in_the_same_transaction(client, database):
    project = first_project(client)
    order = post_order(client, order_body(project["id"])).get_json()
    assert guest(client).post(f"/api/v1/orders/{order['id']}/payment").get_json() == {"id": order["id"], "status": "paid"}
    assert guest(client).post(f"/api/v1/orders/{order['id']}/payment").status_code == 202  # twice: no change
    with UnitOfWork(database) as uow:
        session = uow.session
        messages = session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "orders.retire_credits")).all()
        assert [m.payload for m in messages] == [{"v": 1, "order_id": order["id"]}]


def test_retirement_allocates_ledgers_and_sends_followups_once(client, database):
    order = pay_and_retire(client, database, kg=7)
    with UnitOfWork(database) as uow:
        session = uow.session
        assert ledger_service.retire(uow, order["id"]) is False  # a duplicate delivery
    view = guest(client).get(f"/api/v1/orders/{order['id']}").get_json()
    assert view["status"] == "retired"
    r = view["retirement"]
    assert r["serial_last"] - r["serial_first"] + 1 == 7
    with UnitOfWork(database) as uow:
        session = uow.session
        names = sorted(m.task_name for m in session.scalars(select(OutboxMessage)))
        assert names == ["certificates.render", "orders.retire_credits", "ranking.record"]
        render = session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "certificates.render")).one().payload
        assert render["serial_range"] == r["serial_range"] and render["quantity_kg"] == 7
        assert render["holder"] == "王芳" and render["project"]["registry"] == "CDCER"
        project = session.get(Project, view["project"]["id"])
        assert project.retired_kg == 7 and project.reserved_kg == 0


def test_completion_is_idempotent(client, database):
    order = pay_and_retire(client, database)
    issued = {"order_id": order["id"], "certificate_id": "cert_x", "verify_code": "c",
              "pdf_url": "http://x/pdf", "verify_url": "http://x/v/c"}
    with UnitOfWork(database) as uow:
        assert ordering.complete(uow, **issued) is True
    with UnitOfWork(database) as uow:
        assert ordering.complete(uow, **{**issued, "certificate_id": "cert_other"}) is False
    view = guest(client).get(f"/api/v1/orders/{order['id']}").get_json()
    assert view["status"] == "completed"
    assert view["certificate"] == {"id": "cert_x", "pdf_url": "http://x/pdf", "verify_url": "http://x/v/c",
                                   "revoked_at": None}


def test_ledger_chain_verifies_and_pages(client, database):
    for kg in (1, 2, 3):
        pay_and_retire(client, database, kg=kg)
    page = client.get("/api/v1/ledger?limit=2").get_json()
    assert len(page["items"]) == 2 and page["next_after"] == 2
    rest = client.get(f"/api/v1/ledger?after={page['next_after']}").get_json()
    entries = page["items"] + rest["items"]
    chain = [(e["seq"], e["prev_hash"], e["hash"],
              {k: v for k, v in e.items() if k not in ("seq", "prev_hash", "hash")})
             for e in entries]
    assert ledger.first_broken(chain) is None  # recomputable from the public JSON alone
    assert client.get("/api/v1/ledger?project=nope").status_code == 404


def test_overlapping_retirements_are_refused_by_the_database(client, database):
    order = pay_and_retire(client, database, kg=5)
    from sqlalchemy.exc import IntegrityError
    with pytest.raises(IntegrityError):
        with UnitOfWork(database) as uow:
            session = uow.session
            existing = session.scalars(select(Retirement)).first()
            session.add(Retirement(order_id=order["id"], project_id=existing.project_id,
                                   block_id=existing.block_id, serial_first=existing.serial_last,
                                   serial_last=existing.serial_last + 10))


def test_unpaid_orders_expire_and_release_their_reservation(client, database):
    project = first_project(client)
    order = post_order(client, order_body(project["id"], 50)).get_json()
    with UnitOfWork(database) as uow:
        assert ordering.expire_unpaid(uow, now=utcnow() + timedelta(hours=1)) == 1
    assert first_project(client)["reserved_kg"] == project["reserved_kg"]
    paid = guest(client).post(f"/api/v1/orders/{order['id']}/payment")
    assert paid.status_code == 409 and paid.get_json()["error"]["code"] == "order_not_payable"
    assert guest(client).get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "cancelled"


def test_failed_retirement_refunds_and_releases(client, database):
    project = first_project(client)
    order = post_order(client, order_body(project["id"], 4)).get_json()
    guest(client).post(f"/api/v1/orders/{order['id']}/payment")
    with UnitOfWork(database) as uow:
        assert ledger_service.fail_retirement(uow, order["id"], "registry refused") is True
    view = guest(client).get(f"/api/v1/orders/{order['id']}").get_json()
    assert view["status"] == "failed" and view["failure_reason"] == "registry refused"
    assert first_project(client)["reserved_kg"] == project["reserved_kg"]


def test_stuck_orders_get_their_next_step_again(client, database):
    order = pay_and_retire(client, database)
    with UnitOfWork(database) as uow:
        session = uow.session
        assert ordering.resend_stuck(uow, timedelta(seconds=0)) == {"orders.retire_credits": 0,
                                                                     "certificates.render": 1}
        sent = dict(session.execute(select(OutboxMessage.task_name, func.count()).where(
            OutboxMessage.task_name.in_(("certificates.render", "ranking.record")))
            .group_by(OutboxMessage.task_name)).all())
        # ranking.record waits for the pipeline audit, which knows whether ranking has it.
        assert sent == {"certificates.render": 2, "ranking.record": 1}
    assert guest(client).get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "retired"


def test_inventory_always_adds_up(client, database):
    for kg in (3, 9, 27):
        pay_and_retire(client, database, kg=kg)
    project = first_project(client)
    post_order(client, order_body(project["id"], 100))
    with UnitOfWork(database) as uow:
        session = uow.session
        p = session.get(Project, project["id"])
        retired = session.scalars(select(func.coalesce(func.sum(Retirement.serial_last - Retirement.serial_first + 1), 0))
                                  .where(Retirement.project_id == p.id)).one()
        reserved = session.scalars(select(func.coalesce(func.sum(Order.quantity_kg), 0)).where(
            Order.project_id == p.id, Order.status.in_(("pending_payment", "paid")))).one()
        assert p.retired_kg == retired == 39
        assert p.reserved_kg == reserved == 100
        assert session.scalars(select(func.count()).select_from(LedgerEntry)).one() == 3


def test_ledger_pages_explain_how_to_recompute_the_hash(client, database):
    pay_and_retire(client, database, kg=4)
    page = client.get("/api/v1/ledger").get_json()
    recipe = page["verification"]
    assert recipe["algorithm"] == "sha256" and recipe["genesis_prev_hash"] == ledger.GENESIS_HASH
    assert "seq, prev_hash and hash" in recipe["body"]
    import hashlib
    (entry,) = page["items"]
    text = ledger.canonical_json(ledger.body_of(entry))
    assert hashlib.sha256((entry["prev_hash"] + text).encode("utf-8")).hexdigest() == entry["hash"]


def test_ledger_csv_export_for_auditors(client, database):
    import csv
    import hashlib
    import io
    orders = [pay_and_retire(client, database, kg=kg) for kg in (2, 3, 5)]
    response = client.get("/api/v1/ledger?limit=1", headers={"Accept": "text/csv"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["order_id"] for r in rows] == [o["id"] for o in orders]  # every entry, not one page
    prev = ledger.GENESIS_HASH
    for row in rows:  # the chain recomputes from the CSV alone
        assert row["prev_hash"] == prev
        assert hashlib.sha256((prev + row["canonical_body"]).encode("utf-8")).hexdigest() == row["hash"]
        prev = row["hash"]
    assert [int(r["quantity_kg"]) for r in rows] == [2, 3, 5]
    json_items = client.get("/api/v1/ledger").get_json()["items"]
    assert [r["hash"] for r in rows] == [e["hash"] for e in json_items]

    later = client.get("/api/v1/ledger?after=2", headers={"Accept": "text/csv"}).get_data(as_text=True)
    assert len(later.splitlines()) == 2  # the header and entry 3
    project = client.get("/api/v1/projects?").get_json()["items"][0]["code"]
    by_project = client.get(f"/api/v1/ledger?project={project}", headers={"Accept": "text/csv"})
    assert len(by_project.get_data(as_text=True).splitlines()) == 4
    unknown = client.get("/api/v1/ledger?project=nope", headers={"Accept": "text/csv"})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/ledger", headers={"Accept": "text/html,*/*"}).mimetype == "application/json"


def test_ledger_cli_exports_and_verifies(app, client, database, tmp_path):
    for kg in (1, 2):
        pay_and_retire(client, database, kg=kg)
    runner = app.test_cli_runner()
    exported = runner.invoke(args=["ledger", "export"])
    assert exported.exit_code == 0, exported.output
    assert exported.output.splitlines()[0] == ",".join(ledger.CSV_COLUMNS)
    assert len(exported.output.splitlines()) == 3
    target = tmp_path / "ledger.csv"
    code = first_project(client)["code"]  # every order above is of this project
    to_file = runner.invoke(args=["ledger", "export", "--project", code, "-o", str(target)])
    assert to_file.exit_code == 0 and target.read_text().splitlines()[1:] == exported.output.splitlines()[1:]
    assert runner.invoke(args=["ledger", "export", "--project", "nope"]).exit_code != 0
    assert "ledger ok: 2 entries" in runner.invoke(args=["ledger", "verify"]).output

    with UnitOfWork(database) as uow:
        session = uow.session  # tamper with entry 2
        entry = session.get(LedgerEntry, 2)
        entry.body = {**entry.body, "quantity_kg": 999}
    broken = runner.invoke(args=["ledger", "verify"])
    assert broken.exit_code != 0 and "entry 2" in broken.output


def test_the_guests_choice_to_mask_their_name_reaches_the_ranking_and_the_certificate(client, database):
    project = first_project(client)
    body = order_body(project["id"], 3)
    body["participant"]["mask_name"] = True
    order = post_order(client, body).get_json()
    guest(client).post(f"/api/v1/orders/{order['id']}/payment")
    with UnitOfWork(database) as uow:
        session = uow.session
        ledger_service.retire(uow, order["id"])
    with UnitOfWork(database) as uow:
        session = uow.session
        record = session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "ranking.record")).one().payload
        render = session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "certificates.render")).one().payload
    assert record["mask_name"] is True and record["display_name"] == "王芳"
    assert render["mask_holder"] is True  # and on the certificate's public verification
    assert guest(client).get(f"/api/v1/orders/{order['id']}").get_json()["participant"]["mask_name"] is True


@pytest.mark.parametrize("body, reason", [
    ('{"project_id": "x", "quantity_kg": %s, "participant": {"display_name": "b"}}' % ("1" * 5000),
     "a number longer than"),
    ('{"project_id": "x", "quantity_kg": 1, "participant": {"id": "a", "display_name": "\\ud800"}}',
     "lone surrogate"),
    ('{"project_id": "x", "quantity_kg": NaN, "participant": {"display_name": "b"}}', "NaN"),
])
def test_hostile_json_is_a_400_not_a_500(client, body, reason):
    response = client.post("/api/v1/orders", data=body, headers={"Content-Type": "application/json",
                                                                  "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_json" and reason in error["message"]


@pytest.mark.parametrize("name", ["   ", "\u200b\u200b", "\u200d", "\u3000", "\u202e\u202c", "\t\n"])
def test_a_name_that_prints_nothing_is_refused(client, name):
    project = first_project(client)
    for participant in ({"display_name": name}, {"display_name": "王芳", "organization": name}):
        response = post_order(client, {"project_id": project["id"], "quantity_kg": 1, "participant": participant})
        assert response.status_code == 422, name
        assert response.get_json()["error"]["fields"]["participant"]


def test_names_in_any_script_are_kept(client):
    project = first_project(client)
    for name in ["王芳", "김민준", "Zoë", "👩‍🌾 Farmer", "\u200bAnna"]:
        response = post_order(client, {"project_id": project["id"], "quantity_kg": 1,
                                       "participant": {"display_name": name}})
        assert response.status_code == 201, name
