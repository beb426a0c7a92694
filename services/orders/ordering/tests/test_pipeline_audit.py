"""The pipeline's repair (issue 20): ranking acknowledges each contribution, the pipeline audit
sends ``ranking.record`` again for the retired orders it never acknowledged, and neither repair
task re-sends a message before the previous copy's retries had their time."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from diandian_common import backoff
from diandian_common.contracts import InvalidMessage
from diandian_common.testing import Driver
from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork
from orders import tasks
from orders.models import Order, OutboxMessage, PipelineResend
from orders.ordering import service as ordering
from orders.ordering.domain import lifecycle
from orders.ordering.tests.test_api import GUEST_ID, WANG_FANG, pay_and_retire

GRACE = timedelta(minutes=5)


def sent(database, order_id: str, task_name: str) -> list[dict]:
    """The payloads of ``task_name`` the outbox holds for the order."""
    with UnitOfWork(database) as uow:
        messages = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.task_name == task_name)
                                       .order_by(OutboxMessage.id))
        return [m.payload for m in messages if m.payload["order_id"] == order_id]


def audit(database, now, limit: int = 500) -> ordering.AuditReport:
    with UnitOfWork(database) as uow:
        return ordering.audit_pipeline(uow, GRACE, limit=limit, now=now)


def acknowledge(order_id: str):
    return tasks.contribution_recorded.run({"v": 1, "order_id": order_id})


def resent_total(task_name: str) -> float:
    return REGISTRY.get_sample_value("pipeline_resent_total", {"service": "orders", "task": task_name}) or 0.0


def test_an_unacknowledged_contribution_is_sent_again_after_the_grace(client, database):
    order = pay_and_retire(client, database, kg=6)
    first = sent(database, order["id"], "ranking.record")
    assert len(first) == 1

    assert audit(database, utcnow() + GRACE - timedelta(seconds=5)) == ordering.AuditReport(0, 0)
    report = audit(database, utcnow() + GRACE + timedelta(seconds=1))
    assert report == ordering.AuditReport(unacknowledged=1, resent=1)
    # The same message: ranking keeps the first and counts it once.
    assert sent(database, order["id"], "ranking.record") == first * 2


def test_an_acknowledged_contribution_is_never_sent_again(client, database):
    order = pay_and_retire(client, database, kg=6)
    assert acknowledge(order["id"]) is True
    assert acknowledge(order["id"]) is False   # ranking acknowledges every redelivery: once is enough
    with UnitOfWork(database) as uow:
        assert uow.session.get(Order, order["id"]).ranked_at is not None
    assert audit(database, utcnow() + timedelta(days=30)) == ordering.AuditReport(0, 0)
    assert len(sent(database, order["id"], "ranking.record")) == 1


def test_completed_orders_are_audited_too_and_revoked_ones_not(client, database):
    completed = pay_and_retire(client, database, kg=2)
    revoked = pay_and_retire(client, database, kg=3)
    for order, certificate in ((completed, "cert_a"), (revoked, "cert_b")):
        with UnitOfWork(database) as uow:
            assert ordering.complete(uow, order_id=order["id"], certificate_id=certificate)
    with UnitOfWork(database) as uow:
        ordering.revoke_certificate(uow, order_id=revoked["id"], certificate_id="cert_b", reason="fraud",
                                    refund=False)
    # The revoked order's kilograms must not reach the boards now that its certificate is gone.
    assert audit(database, utcnow() + GRACE * 2) == ordering.AuditReport(unacknowledged=1, resent=1)
    assert len(sent(database, completed["id"], "ranking.record")) == 2
    assert len(sent(database, revoked["id"], "ranking.record")) == 1


def test_an_acknowledgement_for_an_unknown_order_changes_nothing(client, database, caplog):
    with caplog.at_level(logging.WARNING):
        assert acknowledge("ord_unknown") is False
    assert "unknown order ord_unknown" in caplog.text
    with pytest.raises(InvalidMessage):
        acknowledge("  ")


def test_the_audit_re_sends_each_message_after_twice_the_wait_of_the_last(client, database):
    order = pay_and_retire(client, database, kg=4)
    start = utcnow() + GRACE + timedelta(seconds=1)
    passes = [start + timedelta(minutes=m) for m in (0, 1, 4, 5, 14, 15, 16, 34, 35)]
    resent_at = [round((now - start) / timedelta(minutes=1)) for now in passes if audit(database, now).resent]
    # Re-sent after the grace, then 5, 10, 20 minutes after the previous copy: not on every pass.
    assert resent_at == [0, 5, 15, 35]
    assert len(sent(database, order["id"], "ranking.record")) == 1 + 4
    with UnitOfWork(database) as uow:
        resend = uow.session.get(PipelineResend, (order["id"], "ranking.record"))
        assert resend.resends == 4
    waiting = audit(database, start + timedelta(minutes=36))
    assert waiting == ordering.AuditReport(unacknowledged=1, resent=0) and waiting.waiting == 1


def test_the_wait_between_re_sends_doubles_up_to_an_hour():
    assert [backoff.wait_after(n, GRACE) for n in (1, 2, 3, 4)] == [GRACE, GRACE * 2, GRACE * 4, GRACE * 8]
    assert backoff.wait_after(40, GRACE) == backoff.LONGEST_WAIT == timedelta(hours=1)


def test_a_backlog_is_asked_about_a_batch_per_pass_oldest_first(client, database):
    orders = [pay_and_retire(client, database, kg=1)["id"] for _ in range(3)]
    now = utcnow() + GRACE * 2
    first = audit(database, now, limit=2)
    assert first == ordering.AuditReport(unacknowledged=3, resent=2) and first.waiting == 1
    assert [len(sent(database, o, "ranking.record")) for o in orders] == [2, 2, 1]
    assert audit(database, now + timedelta(seconds=1), limit=2) == ordering.AuditReport(3, 1)
    assert [len(sent(database, o, "ranking.record")) for o in orders] == [2, 2, 2]


def test_resend_stuck_does_not_stack_retry_chains(client, database):
    """A storage outage keeps orders `retired`: each pass used to send every one of them a new
    certificates.render, each with a retry chain of its own (603 renders for 100 orders)."""
    retired = pay_and_retire(client, database, kg=5)
    paid = Driver(client).place_and_pay_order(kg=3, participant={"id": GUEST_ID, **WANG_FANG})["id"]
    threshold = timedelta(minutes=5)
    start = utcnow() + threshold + timedelta(seconds=1)
    for minute in range(0, 15):   # orders-beat's pass every minute for a quarter of an hour
        with UnitOfWork(database) as uow:
            ordering.resend_stuck(uow, threshold, now=start + timedelta(minutes=minute))
    # After 0 and 5 minutes; the next is due 10 minutes after that, beyond this quarter hour.
    assert len(sent(database, retired["id"], "certificates.render")) == 1 + 2
    assert len(sent(database, paid, "orders.retire_credits")) == 1 + 2


def test_the_audit_task_counts_and_says_what_it_re_sent(client, database, monkeypatch, caplog):
    monkeypatch.setenv("PIPELINE_AUDIT_SECONDS", "0")
    acknowledged = pay_and_retire(client, database, kg=2)
    acknowledge(acknowledged["id"])
    with caplog.at_level(logging.INFO, logger="orders.ordering.tasks"):
        assert tasks.audit_pipeline.run() == {"unacknowledged": 0, "resent": 0, "waiting": 0,
                                              "registry_unconfirmed": 0, "registry_resent": 0}
    assert "ranking acknowledged every order retired over 0 s ago" in caplog.text

    lost = pay_and_retire(client, database, kg=3)
    before = resent_total("ranking.record")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="orders.ordering.tasks"):
        assert tasks.audit_pipeline.run({"v": 1}) == {"unacknowledged": 1, "resent": 1, "waiting": 0,
                                                      "registry_unconfirmed": 0, "registry_resent": 0}
    assert resent_total("ranking.record") == before + 1
    [line] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "1 retired orders without ranking's acknowledgement" in line.getMessage()
    assert len(sent(database, lost["id"], "ranking.record")) == 2


def test_resend_stuck_counts_and_says_what_it_re_sent(client, database, monkeypatch, caplog):
    monkeypatch.setenv("ORDERS_STUCK_AFTER_SECONDS", "0")
    pay_and_retire(client, database, kg=2)
    before = resent_total("certificates.render")
    with caplog.at_level(logging.WARNING, logger="orders.ordering.tasks"):
        assert tasks.resend_stuck.run() == 1
    assert resent_total("certificates.render") == before + 1
    assert "re-sent the next step of 1 stuck orders (certificates.render: 1)" in caplog.text


def test_the_audit_is_scheduled_every_pipeline_audit_seconds():
    [entry] = [e for e in tasks.celery.conf.beat_schedule.values() if e["task"] == "orders.audit_pipeline"]
    assert entry["schedule"] == 300.0


def test_every_status_after_the_retirement_is_audited():
    """ranking.record is sent when an order retires: every status it can reach from there."""
    after_retirement = {s for s in lifecycle.PAID_OR_LATER if s != lifecycle.PAID}
    assert set(ordering.RANKED_STATUSES) == after_retirement


def test_outbox_and_bookkeeping_commit_together(client, database):
    order = pay_and_retire(client, database, kg=2)
    with pytest.raises(RuntimeError):
        with UnitOfWork(database) as uow:
            ordering.audit_pipeline(uow, GRACE, now=utcnow() + GRACE * 2)
            raise RuntimeError("the transaction fails")
    with UnitOfWork(database) as uow:
        assert uow.session.scalar(select(func.count()).select_from(PipelineResend)) == 0
    assert len(sent(database, order["id"], "ranking.record")) == 1


def test_a_revocation_is_acknowledged_to_certificates_every_time_it_is_delivered(client, database,
                                                                                 monkeypatch):
    """Certificates' revocation audit sends orders.certificate_revoked again until it hears this;
    a revocation orders cannot apply (unknown order) is acknowledged too: asking again changes nothing."""
    from orders.wiring import celery

    published = []
    monkeypatch.setattr(celery, "send_task", lambda name, args=None, queue=None, **_: published.append(
        (name, args[0], queue)))
    order = pay_and_retire(client, database, kg=2)
    message = {"v": 1, "order_id": order["id"], "certificate_id": "cert_1", "reason": "double counted"}
    assert tasks.certificate_revoked.run(message) == "revoked"
    assert tasks.certificate_revoked.run(message) == "already_revoked"
    assert tasks.certificate_revoked.run({**message, "order_id": "ord_missing"}) == "ignored"
    acknowledgements = [(args, queue) for name, args, queue in published
                        if name == "certificates.revocation_recorded"]
    assert acknowledgements == [
        ({"v": 1, "order_id": order_id, "recorded_by": "orders"}, "diandian.certificates")
        for order_id in (order["id"], order["id"], "ord_missing")]
