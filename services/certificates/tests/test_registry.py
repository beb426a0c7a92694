"""``certificates.show_registry``: the registry cancellations covering an order's serials shown
on its certificate (API, verification, PDF) — once, in any order, before or after the
certificate is issued."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select

from certificates import service, settings, tasks
from certificates.app import create_app
from certificates.models import Base, Certificate, RegistryNotice
from certificates.storage import storage_from_env
from diandian_common.contracts import InvalidMessage, load
from diandian_common.uow import UnitOfWork

ORDER = "ord_7f3a9c2e"  # the order of conftest.render_payload
CXL_1 = {"cancellation_id": "CCER-CXL-2026-0001", "url": "https://registry.example.cn/cancellations/0001",
         "retired_on": "2026-12-01"}
CXL_2 = {"cancellation_id": "CCER-CXL-2026-0002", "url": "http://localhost:9000/c/0002",
         "retired_on": "2026-12-03"}


def show_payload(*records: tuple[dict, int], quantity_kg: int = 12_345, order_id: str = ORDER) -> dict:
    """A ``certificates.show_registry`` as orders sends it: every record covering the order
    with the kilograms of it each covers."""
    anchored = sum(kg for _, kg in records)
    return {"v": 1, "order_id": order_id, "registry": {
        "anchored_kg": anchored, "complete": anchored == quantity_kg,
        "records": [{**record, "anchored_kg": kg} for record, kg in records]}}


@pytest.fixture
def client(env):
    app = create_app(database_url=env)
    yield app.test_client()
    app.extensions["db"].dispose()


def certificate_of(database, order_id: str = ORDER) -> Certificate | None:
    with database.transaction() as session:
        return session.scalars(select(Certificate).where(Certificate.order_id == order_id)).one_or_none()


def notices_in(database) -> list[RegistryNotice]:
    with database.transaction() as session:
        return list(session.scalars(select(RegistryNotice)))


@pytest.fixture
def render_calls(monkeypatch) -> list[tuple[str, int]]:
    """(certificate id, anchored kg) of every PDF rendered during the test (rendering stubbed
    out; test_the_pdf_shows_it reads a real one)."""
    calls: list[tuple[str, int]] = []

    def stub(cert):
        calls.append((cert.id, (cert.registry_coverage or {}).get("anchored_kg", 0)))
        return f"%PDF-1.7 stub of {cert.id} with {calls[-1][1]} kg anchored".encode()

    monkeypatch.setattr(service, "render_pdf", stub)
    return calls


@pytest.fixture
def issued(env, database, broker, make_payload, render_calls) -> Certificate:
    tasks.render.run(make_payload())
    render_calls.clear()
    return certificate_of(database)


class TestAfterIssue:
    def test_the_certificate_shows_the_records_and_its_pdf_is_rendered_again(
            self, issued, database, storage_dir, render_calls, client):
        assert client.get(f"/api/v1/certificates/{issued.id}").get_json()["registry"] is None
        (storage_dir / f"{issued.id}.png").write_bytes(b"old preview")

        result = tasks.show_registry.run(show_payload((CXL_1, 1000)))

        assert result == {"order_id": ORDER, "noted": True}
        cert = certificate_of(database)
        expected = {"anchored_kg": 1000, "complete": False, "records": [{**CXL_1, "anchored_kg": 1000}]}
        assert cert.registry_coverage == expected
        assert (cert.registry_kg, cert.pdf_registry_kg) == (1000, 1000)
        assert render_calls == [(issued.id, 1000)]
        assert (storage_dir / f"{issued.id}.pdf").read_bytes().endswith(b"with 1000 kg anchored")
        assert not (storage_dir / f"{issued.id}.png").exists()  # the preview is made anew
        assert client.get(f"/api/v1/certificates/{issued.id}").get_json()["registry"] == expected

    def test_every_delivery_is_confirmed_to_orders_with_its_kilograms(self, issued, broker):
        """Orders' pipeline audit sends the notice again until certificates confirms it holds it."""
        broker.published("orders")   # the certificate's own announcement
        tasks.show_registry.run(show_payload((CXL_1, 1000), (CXL_2, 500)))
        tasks.show_registry.run(show_payload((CXL_1, 1000)))   # an older copy, late: held is more
        assert broker.published("orders") == [
            ("orders.registry_shown", {"v": 1, "order_id": ORDER, "anchored_kg": 1500}),
            ("orders.registry_shown", {"v": 1, "order_id": ORDER, "anchored_kg": 1000})]

    def test_verification_shows_the_records_also_masked(self, issued, client):
        tasks.show_registry.run(show_payload((CXL_1, 1000)))
        for query in ("", "?mask_holder=true"):
            body = client.get(f"/api/v1/certificates/verify/{issued.verify_code}{query}").get_json()
            assert body["certificate"]["registry"]["records"] == [{**CXL_1, "anchored_kg": 1000}]
        masked = client.get(f"/api/v1/certificates/verify/{issued.verify_code}?mask_holder=true").get_json()
        assert masked["certificate"]["holder"] == "张** Z**** S******"
        assert not {"id", "order_id", "pdf_url", "preview_url", "ledger_hash"} & set(masked["certificate"])

    def test_a_redelivered_message_changes_nothing_twice(self, issued, database, render_calls):
        tasks.show_registry.run(show_payload((CXL_1, 1000)))
        again = tasks.show_registry.run(show_payload((CXL_1, 1000)))
        assert again == {"order_id": ORDER, "noted": False}
        assert render_calls == [(issued.id, 1000)]
        assert certificate_of(database).registry_kg == 1000

    def test_an_older_message_arriving_late_changes_nothing(self, issued, database, render_calls):
        newer = show_payload((CXL_1, 1000), (CXL_2, 11_345))
        tasks.show_registry.run(newer)
        tasks.show_registry.run(show_payload((CXL_1, 1000)))

        cert = certificate_of(database)
        assert cert.registry_coverage == newer["registry"] and cert.registry_coverage["complete"] is True
        assert render_calls == [(issued.id, 12_345)]
        [notice] = notices_in(database)
        assert notice.anchored_kg == 12_345

    def test_a_later_record_adds_to_the_first(self, issued, database, render_calls):
        tasks.show_registry.run(show_payload((CXL_1, 1000)))
        tasks.show_registry.run(show_payload((CXL_1, 1000), (CXL_2, 11_345)))
        cert = certificate_of(database)
        assert [r["cancellation_id"] for r in cert.registry_coverage["records"]] == \
            [CXL_1["cancellation_id"], CXL_2["cancellation_id"]]
        assert render_calls == [(issued.id, 1000), (issued.id, 12_345)]

    def test_a_failed_store_is_rendered_on_redelivery(self, issued, database, monkeypatch, render_calls):
        storage_type = type(storage_from_env())
        original = storage_type.put

        def unavailable(self, key, data):
            raise OSError("storage is away")

        monkeypatch.setattr(storage_type, "put", unavailable)
        with pytest.raises(OSError):  # the task retries it (TRANSIENT_ERRORS)
            tasks.show_registry.run(show_payload((CXL_1, 1000)))
        cert = certificate_of(database)
        assert (cert.registry_kg, cert.pdf_registry_kg) == (1000, 0)  # shown, the PDF behind

        monkeypatch.setattr(storage_type, "put", original)
        assert tasks.show_registry.run(show_payload((CXL_1, 1000)))["noted"] is False
        cert = certificate_of(database)
        assert cert.pdf_registry_kg == 1000
        assert render_calls == [(issued.id, 1000)] * 2

    def test_a_registry_growing_while_the_pdf_renders_is_rendered_again(
            self, issued, env, database, monkeypatch, render_calls):
        # While the first message's PDF renders, the second message is kept and copied onto the
        # certificate: the first render's mark is refused, so it renders the newer registry.
        newer = load("certificates.show_registry", show_payload((CXL_1, 1000), (CXL_2, 11_345)))
        stub = service.render_pdf

        def render_while_the_registry_grows(cert):
            pdf = stub(cert)
            if len(render_calls) == 1:
                with UnitOfWork(database) as uow:
                    service.note_registry(uow, newer)
                with UnitOfWork(database) as uow:
                    service.apply_notice(uow, ORDER)
            return pdf

        monkeypatch.setattr(service, "render_pdf", render_while_the_registry_grows)
        tasks.show_registry.run(show_payload((CXL_1, 1000)))

        assert render_calls == [(issued.id, 1000), (issued.id, 12_345)]
        cert = certificate_of(database)
        assert (cert.registry_kg, cert.pdf_registry_kg) == (12_345, 12_345)


class TestBeforeIssue:
    def test_a_message_before_the_certificate_is_kept_and_shown_when_it_is_issued(
            self, env, database, broker, make_payload, render_calls):
        assert tasks.show_registry.run(show_payload((CXL_1, 1000)))["noted"] is True
        assert certificate_of(database) is None
        [notice] = notices_in(database)
        assert (notice.order_id, notice.anchored_kg) == (ORDER, 1000)

        tasks.render.run(make_payload())

        cert = certificate_of(database)
        assert cert.registry_coverage["records"] == [{**CXL_1, "anchored_kg": 1000}]
        assert (cert.registry_kg, cert.pdf_registry_kg) == (1000, 1000)
        assert render_calls == [(cert.id, 1000)]  # rendered once, with the records

    def test_a_message_racing_the_issue_is_not_lost(self, env, database, broker, make_payload,
                                                   storage_dir, render_calls, monkeypatch):
        # The message is handled while the certificate's PDF renders: it finds no certificate
        # (not committed yet) and keeps its notice; the issuer, once its row is committed,
        # finds the notice, copies it and renders the PDF again.
        stub = service.render_pdf

        def render_while_the_message_arrives(cert):
            pdf = stub(cert)
            if len(render_calls) == 1:
                assert tasks.show_registry.run(show_payload((CXL_1, 1000)))["noted"] is True
                assert certificate_of(database) is None
            return pdf

        monkeypatch.setattr(service, "render_pdf", render_while_the_message_arrives)
        result = tasks.render.run(make_payload())

        cert = certificate_of(database)
        assert result == {"certificate_id": cert.id, "created": True}
        assert render_calls == [(cert.id, 0), (cert.id, 1000)]
        assert (cert.registry_kg, cert.pdf_registry_kg) == (1000, 1000)
        assert (storage_dir / f"{cert.id}.pdf").read_bytes().endswith(b"with 1000 kg anchored")

    def test_other_orders_certificates_are_untouched(self, env, database, broker, make_payload, render_calls):
        tasks.render.run(make_payload(order_id="ord_other"))
        tasks.show_registry.run(show_payload((CXL_1, 1000)))
        assert certificate_of(database, "ord_other").registry_coverage is None
        assert [kg for _, kg in render_calls] == [0]


@pytest.mark.parametrize("change", [
    {"registry": None}, {"registry": {"anchored_kg": 1, "complete": True, "records": []}},
    {"registry": {"anchored_kg": 0, "complete": False, "records": [{**CXL_1, "anchored_kg": 1}]}},
    {"registry": {"anchored_kg": 1, "complete": True, "records": [{**CXL_1, "url": "javascript:alert(1)",
                                                                    "anchored_kg": 1}]}},
    {"registry": {"anchored_kg": 1, "complete": True, "records": [{**CXL_1, "retired_on": "soon",
                                                                    "anchored_kg": 1}]}},
    {"registry": {"anchored_kg": "1", "complete": True, "records": [{**CXL_1, "anchored_kg": 1}]}},
    {"order_id": ""},
])
def test_invalid_messages_are_refused_without_effect(env, database, change):
    with pytest.raises(InvalidMessage):
        tasks.show_registry.run({**show_payload((CXL_1, 1000)), **change})
    assert notices_in(database) == []


def test_the_pdf_shows_the_record_or_awaits_it(env, database, broker, make_payload, storage_dir, client):
    """The real renderer: the awaiting line first, the cancellation once it is recorded."""
    from .test_render import pdf_text, qr_codes, squeezed

    tasks.render.run(make_payload())
    cert = certificate_of(database)
    before = squeezed(pdf_text((storage_dir / f"{cert.id}.pdf").read_bytes()))
    assert "等待登记簿注销" in before and "Awaitingregistrycancellation" in before

    tasks.show_registry.run(show_payload((CXL_1, 1000)))

    pdf = client.get(f"/api/v1/certificates/{cert.id}/pdf").data
    after = squeezed(pdf_text(pdf))
    assert CXL_1["cancellation_id"] in after and squeezed(CXL_1["url"]) in after
    assert "2026年12月1日" in after and "1December2026" in after
    # 12,345 kg, 1,000 anchored: the rest is still awaited.
    assert "其余11.345吨等待登记簿注销" in after and "11.345tmoreawaitingregistrycancellation" in after
    assert qr_codes(pdf) == [settings.verify_url(cert.verify_code)]


def test_the_models_match_the_migrations(env):
    engine = create_engine(env)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
