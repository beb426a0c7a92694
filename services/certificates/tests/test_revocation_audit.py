"""The revocation audit (issue 20): orders and ranking confirm each revocation they applied
(``certificates.revocation_recorded``); ``certificates.audit_revocations`` sends the message of
whoever has not confirmed again, each copy waiting twice as long as the one before. And the
registry notice is confirmed to orders (``orders.registry_shown``) once it is shown."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from certificates import service, tasks
from certificates.app import create_app
from certificates.models import Certificate
from diandian_common.contracts import InvalidMessage
from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork

from .test_api import outbox, revoke

GRACE = timedelta(minutes=5)


@pytest.fixture
def client(env):
    app = create_app(database_url=env)
    yield app.test_client()
    app.extensions["db"].dispose()


def audit(database, now, limit=500) -> service.RevocationAudit:
    with UnitOfWork(database) as uow:
        return service.audit_revocations(uow, GRACE, limit=limit, now=now)


def told(database, task_name: str) -> list[dict]:
    return [payload for task, payload in outbox(database) if task == task_name]


def acknowledge(database, order_id: str, by: str) -> bool:
    with UnitOfWork(database) as uow:
        return service.revocation_recorded(uow, order_id, by)


def test_a_revocation_nobody_confirmed_is_sent_again_to_both_after_the_grace(client, add_certificate,
                                                                               database, broker):
    cert = add_certificate()
    assert revoke(client, cert.id, reason="double counted").status_code == 200
    assert audit(database, utcnow()) == service.RevocationAudit(unacknowledged=0, resent=0)

    later = utcnow() + GRACE
    assert audit(database, later) == service.RevocationAudit(unacknowledged=1, resent=1)
    assert told(database, "ranking.revoke") == [{"v": 1, "order_id": cert.order_id}] * 2
    assert told(database, "orders.certificate_revoked") == [
        {"v": 1, "order_id": cert.order_id, "certificate_id": cert.id, "reason": "double counted",
         "refund": False}] * 2


def test_only_the_service_that_did_not_confirm_is_asked_again_with_the_refund_it_was_asked(
        client, add_certificate, database, broker):
    cert = add_certificate()
    response = client.post(f"/api/v1/certificates/{cert.id}/revoke", json={"reason": "fraud", "refund": True},
                           headers={"X-API-Key": "test-operator-key"})
    assert response.status_code == 200
    assert acknowledge(database, cert.order_id, "ranking") is True
    assert acknowledge(database, cert.order_id, "ranking") is False   # a redelivery changes nothing

    assert audit(database, utcnow() + GRACE).resent == 1
    assert len(told(database, "ranking.revoke")) == 1
    assert [p["refund"] for p in told(database, "orders.certificate_revoked")] == [True, True]

    assert acknowledge(database, cert.order_id, "orders") is True
    assert audit(database, utcnow() + GRACE * 10) == service.RevocationAudit(unacknowledged=0, resent=0)


def test_re_sends_wait_twice_as_long_each_time(client, add_certificate, database, broker):
    cert = add_certificate()
    revoke(client, cert.id)
    start = utcnow()
    sent_at = []
    for minute in range(0, 40):
        if audit(database, start + GRACE + timedelta(minutes=minute)).resent:
            sent_at.append(minute)
    assert sent_at == [0, 5, 15, 35]
    with UnitOfWork(database) as uow:
        assert uow.session.get(Certificate, cert.id).revocation_resends == 4
    assert audit(database, start + GRACE + timedelta(minutes=36)) == service.RevocationAudit(1, 0)


def test_valid_certificates_and_acknowledgements_of_unknown_orders_change_nothing(add_certificate, database):
    cert = add_certificate()
    assert acknowledge(database, cert.order_id, "orders") is False   # not revoked
    assert acknowledge(database, "ord_unknown", "ranking") is False
    assert audit(database, utcnow() + GRACE * 2) == service.RevocationAudit(0, 0)
    assert outbox(database) == []


def test_a_backlog_goes_a_batch_per_pass_oldest_first(client, add_certificate, database, broker):
    certs = [add_certificate() for _ in range(3)]
    for cert in certs:
        revoke(client, cert.id)
    first = audit(database, utcnow() + GRACE, limit=2)
    assert first == service.RevocationAudit(unacknowledged=3, resent=2) and first.waiting == 1
    assert [p["order_id"] for p in told(database, "ranking.revoke")][3:] == [certs[0].order_id,
                                                                          certs[1].order_id]


def test_the_tasks_count_say_and_refuse_malformed_acknowledgements(client, add_certificate, database, broker,
                                                                   monkeypatch, caplog):
    monkeypatch.setenv("PIPELINE_AUDIT_SECONDS", "0")
    cert = add_certificate()
    revoke(client, cert.id)
    with caplog.at_level(logging.INFO, logger="certificates.tasks"):
        assert tasks.audit_revocations.run({"v": 1}) == {"unacknowledged": 1, "resent": 1, "waiting": 0}
    [line] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "1 revocations not confirmed by orders or ranking" in line.getMessage()

    for service_name in ("orders", "ranking"):
        assert tasks.revocation_recorded.run({"v": 1, "order_id": cert.order_id,
                                              "recorded_by": service_name}) is True
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="certificates.tasks"):
        assert tasks.audit_revocations.run() == {"unacknowledged": 0, "resent": 0, "waiting": 0}
    assert "confirmed every revocation" in caplog.text
    for bad in ({"v": 1, "order_id": cert.order_id, "recorded_by": "someone"}, {"v": 1, "order_id": ["x"]},
                {"v": 1, "recorded_by": "orders"}):
        with pytest.raises(InvalidMessage):
            tasks.revocation_recorded.run(bad)
