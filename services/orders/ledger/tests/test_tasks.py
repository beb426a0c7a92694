"""The orders tasks, each delivered twice (at-least-once delivery), and their failure paths."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from diandian_common import contracts
from diandian_common.db import DatabaseUnavailable
from diandian_common.testing import GuestClient
from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork
from orders import tasks
from orders.ledger import service as ledger_service
from orders.models import IdempotencyRecord, LedgerEntry, Order, OutboxMessage, Project, Refund, Retirement
from orders.ordering import service as ordering

GUEST = {"id": "p-1", "display_name": "Guest"}

def count(session, model, *where) -> int:
    return session.scalars(select(func.count()).select_from(model).where(*where)).one()


def test_retire_credits_twice_retires_once(client, database, driver):
    order = driver.place_and_pay_order(kg=6, participant=GUEST)
    payload = {"v": 1, "order_id": order["id"]}
    tasks.retire_credits.run(payload)
    tasks.retire_credits.run(payload)
    with UnitOfWork(database) as uow:
        session = uow.session
        assert session.get(Order, order["id"]).status == "retired"
        assert count(session, Retirement) == 1
        assert count(session, LedgerEntry) == 1
        assert count(session, OutboxMessage, OutboxMessage.task_name == "certificates.render") == 1
        assert count(session, OutboxMessage, OutboxMessage.task_name == "ranking.record") == 1
        project = session.get(Project, session.get(Order, order["id"]).project_id)
        assert (project.reserved_kg, project.retired_kg) == (0, 6)


def test_the_certificate_is_asked_for_with_both_names_of_the_scene(client, database, driver):
    order = driver.place_and_pay_order(kg=6, participant=GUEST)
    with UnitOfWork(database) as uow:  # as placed for a scene (the calculator's names, issue 21)
        placed = uow.session.get(Order, order["id"])
        placed.scene_slug, placed.scene_name, placed.scene_name_en = "expo", "绿色博览会", "Green Expo"
    tasks.retire_credits.run({"v": 1, "order_id": order["id"]})
    with UnitOfWork(database) as uow:
        message = uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "certificates.render")).one()
        payload = message.payload
    assert payload["scene"] == {"slug": "expo", "name": "绿色博览会", "name_en": "Green Expo"}
    assert contracts.load("certificates.render", payload).scene.name_en == "Green Expo"


def test_certificate_issued_twice_completes_once(client, database, driver):
    order = driver.place_and_pay_order(kg=6, participant=GUEST)
    tasks.retire_credits.run({"v": 1, "order_id": order["id"]})
    issued = {"v": 1, "order_id": order["id"], "certificate_id": "cert_1", "verify_code": "code-1",
              "pdf_url": "http://x/1.pdf", "verify_url": "http://x/v/code-1"}
    tasks.certificate_issued.run(issued)
    tasks.certificate_issued.run(issued)
    tasks.certificate_issued.run({**issued, "certificate_id": "cert_2"})  # a stray second certificate
    with UnitOfWork(database) as uow:
        session = uow.session
        stored = session.get(Order, order["id"])
        assert (stored.status, stored.certificate_id) == ("completed", "cert_1")


def test_expire_unpaid_twice_releases_once(client, database, monkeypatch):
    monkeypatch.setenv("ORDER_PAYMENT_TIMEOUT_MINUTES", "0")
    project = client.get("/api/v1/projects").get_json()["items"][0]
    GuestClient(client, "p").post("/api/v1/orders", headers={"Idempotency-Key": "k"}, json={
        "project_id": project["id"], "quantity_kg": 9, "participant": {"display_name": "P"}})
    assert tasks.expire_unpaid.run() == 1
    assert tasks.expire_unpaid.run() == 0
    with UnitOfWork(database) as uow:
        session = uow.session
        assert session.get(Project, project["id"]).reserved_kg == project["reserved_kg"]


def test_expired_idempotency_keys_are_purged(client, database):
    now = utcnow()
    with UnitOfWork(database) as uow:
        session = uow.session
        for key, expires in (("old", now - timedelta(seconds=1)), ("fresh", now + timedelta(hours=1))):
            session.add(IdempotencyRecord(key=key, request_hash="h", order_id="ord_x", response_status=201,
                                          response_body={}, expires_at=expires))
    assert tasks.purge_idempotency_keys.run() == 1
    assert tasks.purge_idempotency_keys.run() == 0
    with UnitOfWork(database) as uow:
        session = uow.session
        assert [r.key for r in session.scalars(select(IdempotencyRecord))] == ["fresh"]


def test_idempotency_keys_live_at_least_a_day(monkeypatch):
    monkeypatch.setenv("IDEMPOTENCY_TTL_HOURS", "1")
    assert ordering.idempotency_ttl() == timedelta(hours=24)
    monkeypatch.setenv("IDEMPOTENCY_TTL_HOURS", "72")
    assert ordering.idempotency_ttl() == timedelta(hours=72)


def test_the_purge_is_scheduled():
    schedule = {entry["task"] for entry in tasks.celery.conf.beat_schedule.values()}
    assert {"orders.purge_idempotency_keys", "orders.relay_outbox", "orders.expire_unpaid",
            "orders.resend_stuck"} <= schedule
    assert set(schedule) <= set(tasks.celery.tasks)


def test_retirement_that_exhausts_its_retries_fails_and_refunds(client, database, monkeypatch, driver):
    order = driver.place_and_pay_order(kg=8, participant=GUEST)
    attempts = []

    def database_away(session, order_id):
        attempts.append(order_id)
        raise DatabaseUnavailable("SELECT 1", {}, Exception("could not connect to server"))

    monkeypatch.setattr(ledger_service, "retire", database_away)
    result = tasks.retire_credits.apply(args=[{"v": 1, "order_id": order["id"]}])  # retries run at once
    assert result.failed()
    assert len(attempts) == tasks.retire_credits.max_retries + 1
    view = client.get(f"/api/v1/orders/{order['id']}").get_json()
    assert view["status"] == "failed" and "DatabaseUnavailable" in view["failure_reason"]
    with UnitOfWork(database) as uow:
        session = uow.session
        refund = session.scalars(select(Refund)).one()
        assert (refund.order_id, refund.amount_fen, refund.provider) == (order["id"], order["amount_fen"], "sandbox")
        assert session.get(Project, view["project"]["id"]).reserved_kg == 0


def test_a_retry_that_succeeds_does_not_fail_the_order(client, database, monkeypatch, driver):
    order = driver.place_and_pay_order(kg=6, participant=GUEST)
    real_retire, attempts = ledger_service.retire, []

    def flaky(session, order_id):
        attempts.append(order_id)
        if len(attempts) < 3:
            raise DatabaseUnavailable("SELECT 1", {}, Exception("database is locked"))
        return real_retire(session, order_id)

    monkeypatch.setattr(ledger_service, "retire", flaky)
    assert tasks.retire_credits.apply(args=[{"v": 1, "order_id": order["id"]}]).successful()
    assert client.get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "retired"
    with UnitOfWork(database) as uow:
        session = uow.session
        assert count(session, Refund) == 0


def test_a_message_of_another_version_fails_no_order(client, database, driver):
    order = driver.place_and_pay_order(kg=6, participant=GUEST)
    assert tasks.retire_credits.apply(args=[{"v": 2, "order_id": order["id"]}]).failed()
    assert client.get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "paid"


def test_insufficient_serials_fail_the_order_once(client, database, driver):
    order = driver.place_and_pay_order(kg=5, participant=GUEST)
    with UnitOfWork(database) as uow:
        session = uow.session  # corrupt the inventory: the blocks are used up
        project_id = session.get(Order, order["id"]).project_id
        for block in session.get(Project, project_id).blocks:
            block.next_serial = block.last + 1
    payload = {"v": 1, "order_id": order["id"]}
    tasks.retire_credits.run(payload)
    tasks.retire_credits.run(payload)
    with UnitOfWork(database) as uow:
        session = uow.session
        assert session.get(Order, order["id"]).status == "failed"
        assert count(session, Refund) == 1 and count(session, Retirement) == 0
