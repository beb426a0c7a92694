"""``certificates.render``: issue once per order, announce through the outbox, survive redelivery."""
from __future__ import annotations

import io
import os

import pypdf
import pypdfium2 as pdfium
import pytest
import zxingcpp
from sqlalchemy import select

from celery.signals import worker_init

from diandian_common.contracts import InvalidMessage, UnsupportedMessage

from certificates import service, tasks
from certificates.models import Certificate, OutboxMessage
from certificates.wiring import wiring

from .conftest import PUBLIC_BASE_URL


def certificates_in(database) -> list[Certificate]:
    with database.transaction() as session:
        return list(session.scalars(select(Certificate)))


def outbox_in(database) -> list[OutboxMessage]:
    with database.transaction() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@pytest.fixture
def render_calls(monkeypatch) -> list[str]:
    """Ids of the certificates rendered during the test (rendering itself is stubbed out:
    ``test_render_issues_stores_and_announces`` and test_render.py read real PDFs)."""
    calls: list[str] = []

    def stub(cert):
        calls.append(cert.id)
        return b"%PDF-1.7 stub of " + cert.id.encode()

    monkeypatch.setattr(service, "render_pdf", stub)
    return calls


def test_render_issues_stores_and_announces(env, database, storage_dir, broker, make_payload):
    result = tasks.render.run(make_payload())

    [cert] = certificates_in(database)
    assert result == {"certificate_id": cert.id, "created": True}
    assert cert.order_id == "ord_7f3a9c2e" and cert.status == "valid"
    assert cert.holder == "张三丰 Zhang Sanfeng" and cert.quantity_kg == 12_345
    assert cert.holder_masked is False  # the message did not ask for it
    assert cert.number.startswith("DD-20261125-")  # 18:30 UTC is the 25th in China
    assert cert.project["name_en"] == "Chengdu Longquan Mountain Forestry Carbon Sink"

    verify_url = f"{PUBLIC_BASE_URL}/v/{cert.verify_code}"
    pdf = (storage_dir / f"{cert.id}.pdf").read_bytes()
    image = pdfium.PdfDocument(pdf)[0].render(scale=3).to_pil()
    assert [b.text for b in zxingcpp.read_barcodes(image)] == [verify_url]
    assert cert.number in pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()

    expected = {"v": 1, "order_id": "ord_7f3a9c2e", "certificate_id": cert.id,
                "verify_code": cert.verify_code, "verify_url": verify_url,
                "pdf_url": f"{PUBLIC_BASE_URL}/api/v1/certificates/{cert.id}/pdf"}
    [message] = outbox_in(database)
    assert (message.task_name, message.queue, message.payload) == ("orders.certificate_issued",
                                                                    "orders", expected)
    assert message.sent_at is not None
    assert broker.published("orders") == [("orders.certificate_issued", expected)]


def test_redelivery_announces_the_same_certificate_without_rendering_again(
        env, database, broker, make_payload, render_calls):
    first = tasks.render.run(make_payload())
    second = tasks.render.run(make_payload())

    assert second == {"certificate_id": first["certificate_id"], "created": False}
    assert len(certificates_in(database)) == 1
    assert len(render_calls) == 1
    messages = outbox_in(database)
    assert [m.task_name for m in messages] == ["orders.certificate_issued"] * 2
    assert messages[0].payload == messages[1].payload
    assert [payload["certificate_id"] for _, payload in broker.published("orders")] == \
        [first["certificate_id"]] * 2


def test_redelivery_restores_a_lost_pdf(env, database, storage_dir, broker, make_payload, render_calls):
    first = tasks.render.run(make_payload())
    pdf_path = storage_dir / f"{first['certificate_id']}.pdf"
    pdf_path.unlink()

    tasks.render.run(make_payload())

    assert pdf_path.read_bytes() == b"%PDF-1.7 stub of " + first["certificate_id"].encode()
    assert render_calls == [first["certificate_id"]] * 2


def test_a_duplicate_that_loses_the_race_announces_the_winner(
        env, database, storage_dir, broker, make_payload, monkeypatch, render_calls):
    winner = tasks.render.run(make_payload())
    # The duplicate looked before the winner committed: it saw no certificate.
    original = service.find_by_order
    lookups: list[str] = []

    def stale_first_lookup(uow, order_id):
        lookups.append(order_id)
        return None if len(lookups) == 1 else original(uow, order_id)

    monkeypatch.setattr(service, "find_by_order", stale_first_lookup)

    loser = tasks.render.run(make_payload(holder="someone else"))

    assert loser == {"certificate_id": winner["certificate_id"], "created": False}
    assert len(lookups) == 2  # the stale look-up, then the one after the IntegrityError
    assert len(render_calls) == 2  # the loser rendered its own PDF, then threw it away
    [cert] = certificates_in(database)
    assert cert.holder == "张三丰 Zhang Sanfeng"
    assert sorted(p.name for p in storage_dir.iterdir()) == [f"{cert.id}.pdf"]
    assert [m.payload["certificate_id"] for m in outbox_in(database)] == [cert.id] * 2


def test_different_orders_get_different_certificates(env, database, broker, make_payload, render_calls):
    a = tasks.render.run(make_payload(order_id="ord_a"))
    b = tasks.render.run(make_payload(order_id="ord_b"))
    certs = {c.order_id: c for c in certificates_in(database)}
    assert set(certs) == {"ord_a", "ord_b"} and a["certificate_id"] != b["certificate_id"]
    assert certs["ord_a"].number != certs["ord_b"].number
    assert certs["ord_a"].verify_code != certs["ord_b"].verify_code


def test_lenient_payload(env, database, broker, make_payload, render_calls):
    payload = make_payload(organization=None, scene=None, future_field={"x": 1},
                           issued_at="2026-11-25T09:00:00",  # naive: read as UTC
                           project={"id": 7, "code": "VCS-1", "name": "Wind", "registry": "Verra",
                                    "vintage": "2022", "extra": True})
    del payload["ledger_hash"]
    tasks.render.run(payload)
    [cert] = certificates_in(database)
    assert cert.organization is None and cert.scene is None and cert.ledger_hash is None
    assert cert.project == {"id": 7, "code": "VCS-1", "name": "Wind", "name_en": None,
                            "registry": "Verra", "vintage": "2022"}
    assert cert.issued_at.replace(tzinfo=None).isoformat() == "2026-11-25T09:00:00"


@pytest.mark.parametrize("change", [
    {"quantity_kg": 0}, {"quantity_kg": "lots"}, {"holder": ""}, {"order_id": None},
    {"project": {"id": "p"}}, {"issued_at": "yesterday"}, {"scene": {"slug": "x"}},
    {"project": {"id": True, "code": "C", "name": "N", "registry": "R", "vintage": 2023}},
])
def test_invalid_payloads_are_refused_without_effect(env, database, make_payload, change):
    with pytest.raises(InvalidMessage):
        tasks.render.run(make_payload(**change))
    assert certificates_in(database) == [] and outbox_in(database) == []


@pytest.mark.parametrize("payload", [{"v": 2, "order_id": "x"}, {"order_id": "x"}, ["v", 1]])
def test_unknown_message_versions_are_refused(env, database, payload):
    with pytest.raises(UnsupportedMessage):
        tasks.render.run(payload)
    assert certificates_in(database) == []


def test_an_unreachable_broker_leaves_the_message_for_the_periodic_relay(
        env, database, make_payload, monkeypatch, offline_celery, render_calls):
    monkeypatch.setattr(wiring, "celery", offline_celery)

    result = tasks.render.run(make_payload())

    [message] = outbox_in(database)
    # One quick PING found the broker down, so no publish was even tried (no attempt counted).
    assert result["created"] and message.sent_at is None and message.attempts == 0


def test_relay_outbox_publishes_what_is_left(env, database, broker, make_payload, monkeypatch,
                                            offline_celery, render_calls):
    with monkeypatch.context() as down:  # the broker is down while the certificate is issued
        down.setattr(wiring, "celery", offline_celery)
        tasks.render.run(make_payload())
    assert outbox_in(database)[0].sent_at is None

    assert tasks.relay_outbox.run({"v": 1}) == 1  # back up: the memory broker
    assert outbox_in(database)[0].sent_at is not None
    assert [task for task, _ in broker.published("orders")] == ["orders.certificate_issued"]


def test_the_render_task_is_bounded_and_retries_transient_errors():
    assert tasks.render.soft_time_limit == 30 and tasks.render.time_limit == 45
    assert set(tasks.TRANSIENT_ERRORS) <= set(tasks.render.autoretry_for)
    assert not any(issubclass(error, retried) for error in (InvalidMessage, UnsupportedMessage)
                   for retried in tasks.render.autoretry_for)


def test_a_colliding_certificate_number_is_drawn_again(env, database, storage_dir, broker, make_payload,
                                                       monkeypatch, render_calls):
    numbers = iter(["DD-20261125-SAMESAME", "DD-20261125-SAMESAME", "DD-20261125-DIFFEREN"])
    monkeypatch.setattr(service, "certificate_number", lambda issued_on: next(numbers))
    tasks.render.run(make_payload(order_id="ord_a"))

    result = tasks.render.run(make_payload(order_id="ord_b"))

    assert result["created"] is True
    certs = {c.order_id: c for c in certificates_in(database)}
    assert certs["ord_a"].number == "DD-20261125-SAMESAME"
    assert certs["ord_b"].number == "DD-20261125-DIFFEREN"
    assert len(render_calls) == 3
    assert sorted(p.name for p in storage_dir.iterdir()) == sorted(f"{c.id}.pdf" for c in certs.values())


def test_the_worker_makes_the_font_subset_before_forking(tmp_path, monkeypatch):
    dejavu = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    if not os.path.isfile(dejavu):
        pytest.skip("DejaVu Sans is not installed")
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.delenv("CERTIFICATES_FONT_CACHE_DIR", raising=False)
    monkeypatch.setenv("CERTIFICATES_CJK_FONT", dejavu)
    worker_init.send(sender=None)  # as the main worker process does before starting its pool
    assert [p.suffix for p in (tmp_path / "fonts").glob("cjk-common-*")] == [".ttf"]


def test_the_holders_choice_to_be_masked_is_kept(env, database, storage_dir, broker, make_payload, render_calls):
    tasks.render.run({**make_payload(), "mask_holder": True})
    [cert] = certificates_in(database)
    assert cert.holder_masked is True
