"""The message contracts: what producers may build and send, what consumers load."""
from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Session

from diandian_common import celery_app, config, contracts_markdown, outbox
from diandian_common.contracts import (CONTRACTS, Empty, InvalidMessage, NoContract, UnsupportedMessage, build,
                                       check, load)

RETIRED_AT = "2026-11-24T18:30:00+00:00"

# The messages exactly as their producers send them today (docs/contract.md, "Messages").
AS_SENT = {
    "orders.retire_credits": {"order_id": "ord_7f3a9c2e"},
    "certificates.render": {
        "order_id": "ord_7f3a9c2e", "holder": "张三丰", "organization": None, "quantity_kg": 12,
        "project": {"id": "prj_longquan", "code": "CDCER-0042", "name": "成都龙泉山林业碳汇项目",
                    "name_en": "Longquan Forestry", "registry": "CDCER", "vintage": 2023},
        "serial_range": "CDCER-0042-2023:000001001-000001012",
        "scene": {"slug": "expo-2026", "name": "博览会", "name_en": "Expo"},
        "issued_at": RETIRED_AT, "ledger_hash": "9f2c" * 16},
    "ranking.record": {
        "order_id": "ord_7f3a9c2e", "participant_id": "p_1", "display_name": "张三丰", "organization": None,
        "scene": "expo-2026", "quantity_kg": 12, "occurred_at": RETIRED_AT, "mask_name": False},
    "orders.certificate_issued": {
        "order_id": "ord_7f3a9c2e", "certificate_id": "cert_0123456789abcdef0123", "verify_code": "DD7K-Q2MX",
        "verify_url": "https://diandian.example/v/DD7K-Q2MX",
        "pdf_url": "https://diandian.example/api/v1/certificates/cert_0123456789abcdef0123/pdf"},
    "orders.certificate_revoked": {"order_id": "ord_7f3a9c2e", "certificate_id": "cert_0123456789abcdef0123",
                                   "reason": "refunded", "refund": True},
    "ranking.revoke": {"order_id": "ord_7f3a9c2e"},
    "orders.contribution_recorded": {"order_id": "ord_7f3a9c2e"},
    "orders.registry_shown": {"order_id": "ord_7f3a9c2e", "anchored_kg": 600},
    "certificates.revocation_recorded": {"order_id": "ord_7f3a9c2e", "recorded_by": "ranking"},
    "orders.deliver_webhook": {"delivery_id": 42},
    "orders.send_refund": {"refund_id": 7},
    "calculator.prerender_scene": {"slug": "expo-2026"},
    "certificates.show_registry": {"order_id": "ord_7f3a9c2e", "registry": {
        "anchored_kg": 12, "complete": True, "records": [
            {"cancellation_id": "CCER-CXL-1", "url": "https://registry.example.cn/c/1", "retired_on": "2026-12-01",
             "anchored_kg": 12}]}},
}


def test_every_message_with_fields_has_an_example_here():
    assert set(AS_SENT) == {name for name, c in CONTRACTS.items() if not c.periodic}


@pytest.mark.parametrize("task_name", sorted(AS_SENT))
def test_what_producers_send_today_builds_unchanged_and_loads_typed(task_name):
    payload = build(task_name, **AS_SENT[task_name])
    assert payload == {"v": 1, **AS_SENT[task_name]}
    message = load(task_name, payload)
    assert isinstance(message, CONTRACTS[task_name].schema.message_type)


def test_a_render_message_sent_before_the_scenes_english_name_still_loads():
    before = {**AS_SENT["certificates.render"], "v": 1, "scene": {"slug": "expo-2026", "name": "博览会"}}
    scene = load("certificates.render", before).scene
    assert (scene.slug, scene.name, scene.name_en) == ("expo-2026", "博览会", None)
    assert load("certificates.render", {**AS_SENT["certificates.render"], "v": 1}).scene.name_en == "Expo"


def test_load_gives_typed_fields():
    render = load("certificates.render", build("certificates.render", **AS_SENT["certificates.render"]))
    assert render.project.code == "CDCER-0042" and render.scene.slug == "expo-2026"
    assert render.issued_at == datetime(2026, 11, 24, 18, 30, tzinfo=timezone.utc)
    assert asdict(render.project)["vintage"] == 2023
    record = load("ranking.record", {"v": 1, **AS_SENT["ranking.record"], "quantity_kg": "1.5"})
    assert record.quantity_kg == Decimal("1.5") and record.mask_name is False


def test_consumers_fill_in_optional_fields_and_ignore_unknown_ones():
    issued = load("orders.certificate_issued", {"v": 1, "order_id": "o", "certificate_id": "c", "new": 1})
    assert (issued.verify_code, issued.verify_url, issued.pdf_url) == (None, None, None)
    revoked = load("orders.certificate_revoked", {"v": 1, "order_id": "o", "certificate_id": "c", "reason": "r"})
    assert revoked.refund is False
    record = {k: v for k, v in AS_SENT["ranking.record"].items() if k not in ("mask_name", "organization")}
    assert load("ranking.record", {"v": 1, **record}).organization is None
    naive = load("ranking.record", {"v": 1, **record, "occurred_at": "2026-11-24T18:30:00"})
    assert naive.occurred_at.tzinfo is timezone.utc


@pytest.mark.parametrize("task_name,change,field", [
    ("orders.retire_credits", {"order_id": None}, "order_id"),
    ("orders.retire_credits", {"order_id": "x" * 65}, "order_id"),
    ("orders.deliver_webhook", {"delivery_id": "next"}, "delivery_id"),
    ("certificates.render", {"quantity_kg": 0}, "quantity_kg"),
    ("certificates.render", {"project": {"id": True}}, "project"),
    ("certificates.render", {"issued_at": "yesterday"}, "issued_at"),
    ("ranking.record", {"quantity_kg": 1.0005}, "quantity_kg"),
    ("ranking.record", {"quantity_kg": True}, "quantity_kg"),
    ("ranking.record", {"display_name": " \t"}, "display_name"),
    ("ranking.record", {"scene": "Not A Slug"}, "scene"),
    ("ranking.record", {"mask_name": "yes"}, "mask_name"),
    ("ranking.record", {"occurred_at": 1700000000}, "occurred_at"),
    ("certificates.show_registry", {"registry": None}, "registry"),
    ("certificates.show_registry", {"registry": {"anchored_kg": 1, "complete": True, "records": []}}, "registry"),
    ("certificates.show_registry", {"registry": {"anchored_kg": 1, "complete": True, "records": [
        {"cancellation_id": "C", "url": "javascript:alert(1)", "retired_on": "2026-12-01", "anchored_kg": 1}]}},
     "registry"),
])
def test_malformed_payloads_raise_invalid_message_naming_the_field(task_name, change, field):
    payload = {"v": 1, **AS_SENT[task_name], **change}
    with pytest.raises(InvalidMessage) as consumed:
        load(task_name, payload)
    assert field in consumed.value.errors and consumed.value.task_name == task_name
    with pytest.raises(InvalidMessage) as produced:
        check(task_name, payload)
    assert field in produced.value.errors


def test_a_missing_field_is_invalid():
    with pytest.raises(InvalidMessage) as error:
        load("ranking.record", {"v": 1, "order_id": "o"})
    assert {"participant_id", "display_name", "quantity_kg", "occurred_at"} <= set(error.value.errors)


@pytest.mark.parametrize("payload", [{"v": 2, "order_id": "o"}, {"order_id": "o"}, ["v", 1], None, "v1"])
def test_other_versions_are_unsupported_not_invalid(payload):
    with pytest.raises(UnsupportedMessage):
        load("orders.retire_credits", payload)
    assert not issubclass(UnsupportedMessage, InvalidMessage) and not issubclass(InvalidMessage, UnsupportedMessage)


def test_producers_may_not_add_fields_the_contract_lacks():
    with pytest.raises(InvalidMessage) as error:
        build("orders.retire_credits", order_id="o", note="hi")
    assert error.value.errors == {"note": ["not in the contract"]}
    project = {**AS_SENT["certificates.render"]["project"], "colour": "green"}
    with pytest.raises(InvalidMessage) as error:
        build("certificates.render", **{**AS_SENT["certificates.render"], "project": project})
    assert "project.colour" in error.value.errors
    with pytest.raises(UnsupportedMessage):
        check("orders.retire_credits", {"v": 2, "order_id": "o"})


def test_task_names_without_a_contract_are_refused():
    for call in (lambda: build("orders.retire_credit", order_id="o"), lambda: load("ranking.unknown", {"v": 1}),
                 lambda: check("calculator.anything", {})):
        with pytest.raises(NoContract):
            call()


def test_periodic_tasks_take_an_empty_payload_or_none():
    for name in ("orders.relay_outbox", "certificates.relay_outbox", "ranking.reconcile"):
        assert CONTRACTS[name].periodic
        assert build(name) == {"v": 1}
        assert load(name, {"v": 1}) == Empty() and load(name, None) == Empty()
    with pytest.raises(UnsupportedMessage):
        load("ranking.reconcile", {"v": 2})
    with pytest.raises(UnsupportedMessage):
        load("orders.retire_credits", None)


def test_invalid_and_unsupported_messages_are_not_transient_errors():
    """Tasks retry the database's and the broker's errors; a broken message is neither."""
    import redis
    from sqlalchemy.exc import DBAPIError

    for error in (InvalidMessage, UnsupportedMessage, NoContract):
        assert not issubclass(error, (DBAPIError, OSError, redis.RedisError))


# --- the plumbing refuses what has no contract --------------------------------------

class Recorder:
    def __init__(self):
        self.sent = []

    def send_task(self, name, args=(), **options):
        self.sent.append((name, args[0], options["queue"]))


def test_send_checks_the_platforms_messages():
    celery = Recorder()
    celery_app.send(celery, "orders.retire_credits", {"order_id": "o"})
    assert celery.sent == [("orders.retire_credits", {"v": 1, "order_id": "o"}, config.celery_queue("orders"))]
    with pytest.raises(NoContract):
        celery_app.send(celery, "orders.retire_everything", {"order_id": "o"})
    with pytest.raises(InvalidMessage):
        celery_app.send(celery, "orders.retire_credits", {})
    celery_app.send(celery, "probe.record", {"what": "a test's own app"})  # not a platform queue
    assert len(celery.sent) == 2


class Base(DeclarativeBase):
    pass


class OutboxMessage(outbox.OutboxMixin, Base):
    __tablename__ = "outbox"


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session


def test_enqueue_checks_every_message_in_the_transaction(session):
    outbox.enqueue(session, OutboxMessage, "ranking.revoke", {"order_id": "o"})
    with pytest.raises(NoContract):
        outbox.enqueue(session, OutboxMessage, "ranking.unrevoke", {"order_id": "o"})
    with pytest.raises(InvalidMessage):
        outbox.enqueue(session, OutboxMessage, "ranking.revoke", {"order": "o"})
    session.flush()
    rows = session.scalars(select(OutboxMessage)).all()
    assert [(r.task_name, r.queue, r.payload) for r in rows] == [("ranking.revoke", "ranking",
                                                                   {"v": 1, "order_id": "o"})]


def test_the_contract_types_are_documented():
    text = contracts_markdown.messages_markdown()
    for name in CONTRACTS:
        assert f"`{name}`" in text
    assert "| `project.vintage` | string (1–100 characters) or integer | yes |" in text
