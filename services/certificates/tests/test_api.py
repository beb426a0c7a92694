"""The certificates API: details, PDF (with re-rendering), PNG preview, verification,
revocation; on local storage and on a real S3-compatible server."""
from __future__ import annotations

import io

import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from certificates import service, tasks
from certificates.app import create_app
from certificates.domain.verification import VerificationCodes, new_verify_token
from certificates.models import Certificate, OutboxMessage
from diandian_common.testing import free_port

from .conftest import OPERATOR_KEY, PUBLIC_BASE_URL


@pytest.fixture
def client(env):
    app = create_app(database_url=env)
    yield app.test_client()
    app.extensions["db"].dispose()


def revoke(client, certificate_id, reason="refunded", key=OPERATOR_KEY):
    headers = {"X-API-Key": key} if key else {}
    return client.post(f"/api/v1/certificates/{certificate_id}/revoke", json={"reason": reason},
                       headers=headers)


def outbox(database) -> list[tuple[str, dict]]:
    with database.transaction() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [(row.task_name, row.payload) for row in rows]


class TestGet:
    def test_the_certificate(self, client, add_certificate):
        cert = add_certificate(organization="Acme", scene={"slug": "expo", "name": "Expo"},
                               ledger_hash="ab" * 32)
        response = client.get(f"/api/v1/certificates/{cert.id}")
        assert response.status_code == 200
        assert response.get_json() == {
            "id": cert.id, "number": cert.number, "order_id": cert.order_id, "holder": "Jane Doe",
            "holder_masked": False,
            "organization": "Acme", "quantity_kg": 850, "project": cert.project,
            "serial_range": cert.serial_range, "scene": {"slug": "expo", "name": "Expo"},
            "ledger_hash": "ab" * 32, "issued_at": "2026-11-25T02:00:00+00:00", "status": "valid",
            "revoked_at": None, "verify_url": f"{PUBLIC_BASE_URL}/v/{cert.verify_code}",
            "pdf_url": f"{PUBLIC_BASE_URL}/api/v1/certificates/{cert.id}/pdf",
            "preview_url": f"{PUBLIC_BASE_URL}/api/v1/certificates/{cert.id}/preview.png",
            "registry": None,
        }

    @pytest.mark.parametrize("path", ["cert_missing", "cert_missing/pdf", "cert_missing/preview.png",
                                      "x" * 300, "%00", "é", "x" * 300 + "/preview.png"])
    def test_unknown_ids_are_404(self, client, path):
        response = client.get(f"/api/v1/certificates/{path}")
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"


class TestPdf:
    def test_the_stored_pdf(self, client, add_certificate):
        cert = add_certificate()
        response = client.get(f"/api/v1/certificates/{cert.id}/pdf")
        assert response.status_code == 200
        assert response.mimetype == "application/pdf"
        assert response.data == b"%PDF-1.7 placeholder of " + cert.id.encode()
        assert response.headers["Content-Disposition"] == f'inline; filename="{cert.number}.pdf"'

    def test_a_missing_file_is_rendered_again_from_the_database(self, client, add_certificate, storage_dir):
        cert = add_certificate(holder="李白 Li Bai")
        (storage_dir / f"{cert.id}.pdf").unlink()

        response = client.get(f"/api/v1/certificates/{cert.id}/pdf")

        assert response.status_code == 200 and response.data.startswith(b"%PDF")
        image = pdfium.PdfDocument(response.data)[0].render(scale=3).to_pil()
        verify_url = client.get(f"/api/v1/certificates/{cert.id}").get_json()["verify_url"]
        assert [b.text for b in zxingcpp.read_barcodes(image)] == [verify_url]
        assert (storage_dir / f"{cert.id}.pdf").read_bytes() == response.data


def png_of(response) -> Image.Image:
    assert response.status_code == 200 and response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    assert image.format == "PNG"
    return image


class TestPreview:
    def test_the_first_page_as_a_png_for_sharing(self, client, add_certificate, storage_dir):
        cert = add_certificate(holder="李白 Li Bai")
        (storage_dir / f"{cert.id}.pdf").unlink()  # the placeholder: render the real one

        response = client.get(f"/api/v1/certificates/{cert.id}/preview.png")

        image = png_of(response)
        assert image.size == (1200, 849)  # A4 landscape, 1200 px wide for Open Graph
        verify_url = client.get(f"/api/v1/certificates/{cert.id}").get_json()["verify_url"]
        assert [b.text for b in zxingcpp.read_barcodes(image)] == [verify_url]
        assert response.headers["Cache-Control"] == "public, max-age=3600"
        # Kept next to the PDF, which was re-rendered and stored on the way.
        assert (storage_dir / f"{cert.id}.png").read_bytes() == response.data
        assert (storage_dir / f"{cert.id}.pdf").read_bytes().startswith(b"%PDF")

    def test_a_stored_preview_is_served_as_it_is(self, client, add_certificate, storage_dir, monkeypatch):
        cert = add_certificate()
        (storage_dir / f"{cert.id}.pdf").unlink()
        first = client.get(f"/api/v1/certificates/{cert.id}/preview.png").data

        def no_rendering(*args):
            raise AssertionError("the stored preview should have been served")

        monkeypatch.setattr(service, "pdf_preview_png", no_rendering)
        monkeypatch.setattr(service, "render_pdf", no_rendering)
        assert client.get(f"/api/v1/certificates/{cert.id}/preview.png").data == first

    def test_a_missing_preview_is_made_again(self, client, add_certificate, storage_dir):
        cert = add_certificate()
        (storage_dir / f"{cert.id}.pdf").unlink()
        first = client.get(f"/api/v1/certificates/{cert.id}/preview.png").data
        (storage_dir / f"{cert.id}.png").unlink()
        again = client.get(f"/api/v1/certificates/{cert.id}/preview.png")
        assert png_of(again).size == (1200, 849) and (storage_dir / f"{cert.id}.png").is_file()
        assert again.data == first

    def test_a_corrupt_stored_pdf_is_rendered_again_for_the_preview(self, client, add_certificate, storage_dir):
        cert = add_certificate()
        (storage_dir / f"{cert.id}.pdf").write_bytes(b"%PDF-1.7 truncated")
        response = client.get(f"/api/v1/certificates/{cert.id}/preview.png")
        assert response.status_code == 200 and png_of(response).size == (1200, 849)
        assert (storage_dir / f"{cert.id}.pdf").read_bytes().startswith(b"%PDF")
        assert len((storage_dir / f"{cert.id}.pdf").read_bytes()) > 1000


class TestVerify:
    def test_a_genuine_code(self, client, add_certificate):
        cert = add_certificate(ledger_hash="ab" * 32)
        response = client.get(f"/api/v1/certificates/verify/{cert.verify_code}")
        assert response.status_code == 200
        body = response.get_json()
        assert body["valid"] is True and body["revoked"] is False
        assert body["certificate"] == client.get(f"/api/v1/certificates/{cert.id}").get_json()
        assert body["certificate"]["holder"] == "Jane Doe"
        # What ties the certificate to the retirement in the orders ledger.
        assert body["certificate"]["serial_range"] == cert.serial_range
        assert body["certificate"]["ledger_hash"] == "ab" * 32

    def test_the_holder_can_be_masked(self, client, add_certificate):
        cert = add_certificate(holder="张三丰", ledger_hash="cd" * 32)
        full = client.get(f"/api/v1/certificates/verify/{cert.verify_code}").get_json()["certificate"]

        body = client.get(f"/api/v1/certificates/verify/{cert.verify_code}?mask_holder=true").get_json()

        masked = body["certificate"]
        assert body["valid"] is True and masked["holder"] == "张**"
        # Nothing that leads to the full name: no id (details, PDF, preview), no order, no ledger entry.
        leads = {"id", "order_id", "ledger_hash", "pdf_url", "preview_url"}
        assert not leads & set(masked)
        assert cert.id not in str(body) and "张三丰" not in str(body) and "cd" * 32 not in str(body)
        assert masked == {key: value for key, value in full.items() if key not in leads | {"holder"}} | {
            "holder": "张**"}
        assert masked["serial_range"] == cert.serial_range and masked["holder_masked"] is False

    def test_a_holder_who_chose_to_be_masked_is_masked_in_every_verification(self, client, add_certificate):
        cert = add_certificate(holder="张三丰", ledger_hash="cd" * 32, holder_masked=True)
        for query in ("", "?mask_holder=false", "?mask_holder=0", "?mask_holder=true"):
            body = client.get(f"/api/v1/certificates/verify/{cert.verify_code}{query}").get_json()
            assert body["valid"] is True and body["certificate"]["holder"] == "张**", query
            assert body["certificate"]["holder_masked"] is True
            assert "张三丰" not in str(body) and cert.id not in str(body) and cert.order_id not in str(body)
        # The holder's own certificate (reached through their order) is theirs in full.
        assert client.get(f"/api/v1/certificates/{cert.id}").get_json()["holder"] == "张三丰"

    def test_a_bad_mask_flag_is_422(self, client, add_certificate):
        cert = add_certificate()
        response = client.get(f"/api/v1/certificates/verify/{cert.verify_code}?mask_holder=perhaps")
        assert response.status_code == 422
        assert "mask_holder" in response.get_json()["error"]["fields"]

    def test_codes_of_a_previous_key_still_verify(self, client, add_certificate):
        token = new_verify_token()
        old_code = VerificationCodes(["test-signing-key-previous"]).code_for(token)
        cert = add_certificate(verify_token=token, verify_code=old_code)
        response = client.get(f"/api/v1/certificates/verify/{old_code}")
        assert response.status_code == 200 and response.get_json()["certificate"]["id"] == cert.id

    def test_only_the_canonical_spelling_of_a_code_verifies(self, client, add_certificate):
        cert = add_certificate()
        token, signature = cert.verify_code.split(".")
        for code in [f"{token}.{signature[:4]}!{signature[4:]}", f"{token}.{signature[:4]}*{signature[4:]}",
                     f"{token}.{signature[:4]}~{signature[4:]}", f"{token}.{signature[:4]}%00{signature[4:]}",
                     f"{token}.{signature[:4]}%20{signature[4:]}", f"{token}.{signature}=",
                     f"{token}.{signature}==", f"{token}.{signature.replace('-', '+').replace('_', '/')}"]:
            if code == cert.verify_code:
                continue
            response = client.get(f"/api/v1/certificates/verify/{code}")
            assert response.status_code == 404, code
            assert response.get_json()["error"]["code"] == "not_found"
        assert client.get(f"/api/v1/certificates/verify/{cert.verify_code}").get_json()["valid"] is True

    def test_altered_forged_and_unknown_codes_are_404(self, client, add_certificate):
        cert = add_certificate()
        token, signature = cert.verify_code.split(".")
        other = "A" if token[0] != "A" else "B"
        forged = VerificationCodes(["someone-elses-key"]).code_for(token)
        unknown = VerificationCodes(["test-signing-key-current"]).code_for(new_verify_token())
        for code in [f"{other}{token[1:]}.{signature}", f"{token}.{signature[:-1]}",
                     f"{token}.{signature}x", forged, unknown, token, "nonsense", "a" * 2000]:
            response = client.get(f"/api/v1/certificates/verify/{code}")
            assert response.status_code == 404, code
            assert response.get_json() == {"valid": False, "error": {
                "code": "not_found", "message": "no certificate has this verification code"}}


class TestRevoke:
    def test_revoking(self, client, add_certificate, database, broker):
        cert = add_certificate()
        response = revoke(client, cert.id, reason="order refunded")

        assert response.status_code == 200
        body = response.get_json()
        assert body["id"] == cert.id and body["status"] == "revoked" and body["revoked_at"]
        told_orders = ("orders.certificate_revoked", {"v": 1, "order_id": cert.order_id, "certificate_id": cert.id,
                                                      "reason": "order refunded", "refund": False})
        assert outbox(database) == [("ranking.revoke", {"v": 1, "order_id": cert.order_id}), told_orders]
        assert broker.published("ranking") == [("ranking.revoke", {"v": 1, "order_id": cert.order_id})]
        assert broker.published("orders") == [told_orders]
        with database.transaction() as session:
            assert session.get(Certificate, cert.id).revocation_reason == "order refunded"

        verified = client.get(f"/api/v1/certificates/verify/{cert.verify_code}")
        assert verified.status_code == 200
        assert verified.get_json()["valid"] is False and verified.get_json()["revoked"] is True
        assert verified.get_json()["certificate"]["status"] == "revoked"
        assert verified.get_json()["certificate"]["revoked_at"] == body["revoked_at"]
        masked = client.get(f"/api/v1/certificates/verify/{cert.verify_code}?mask_holder=1").get_json()
        assert masked["valid"] is False and masked["certificate"]["status"] == "revoked"

    def test_revoking_twice_changes_nothing(self, client, add_certificate, database, broker):
        cert = add_certificate()
        first = revoke(client, cert.id).get_json()
        second = revoke(client, cert.id, reason="again")
        assert second.status_code == 200 and second.get_json() == first
        assert [task for task, _ in outbox(database)] == ["ranking.revoke", "orders.certificate_revoked"]

    def test_revoking_with_a_refund_asks_orders_to_refund(self, client, add_certificate, database):
        cert = add_certificate()
        response = client.post(f"/api/v1/certificates/{cert.id}/revoke", json={"reason": "refund", "refund": True},
                               headers={"X-API-Key": OPERATOR_KEY})
        assert response.status_code == 200
        (payload,) = [p for task, p in outbox(database) if task == "orders.certificate_revoked"]
        assert payload["refund"] is True and payload["certificate_id"] == cert.id

    def test_needs_an_operator_key(self, client, add_certificate, database):
        cert = add_certificate()
        assert revoke(client, cert.id, key=None).status_code == 401
        assert revoke(client, cert.id, key="wrong").status_code == 403
        assert client.get(f"/api/v1/certificates/{cert.id}").get_json()["status"] == "valid"
        assert outbox(database) == []

    @pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501},
                                      {"reason": 42}])
    def test_needs_a_reason(self, client, add_certificate, body):
        cert = add_certificate()
        response = client.post(f"/api/v1/certificates/{cert.id}/revoke", json=body,
                               headers={"X-API-Key": OPERATOR_KEY})
        assert response.status_code == 422
        assert "reason" in response.get_json()["error"]["fields"]

    def test_unreadable_json_is_400(self, client, add_certificate):
        cert = add_certificate()
        response = client.post(f"/api/v1/certificates/{cert.id}/revoke", data="{nope",
                               headers={"X-API-Key": OPERATOR_KEY, "Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_json"

    def test_unknown_certificate_is_404(self, client, database):
        response = revoke(client, "cert_missing")
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
        assert outbox(database) == []


class TestOnS3:
    """The same API with the files in a bucket of a real S3-compatible server."""

    def test_issue_then_serve_the_pdf_and_preview_from_the_bucket(self, s3_bucket, client, database,
                                                                  broker, make_payload):
        issued = tasks.render.run(make_payload())
        cert_id = issued["certificate_id"]
        assert s3_bucket.keys() == [f"certificates/{cert_id}.pdf"]

        pdf = client.get(f"/api/v1/certificates/{cert_id}/pdf")
        assert pdf.status_code == 200 and pdf.data == s3_bucket.read(f"{cert_id}.pdf")

        preview = client.get(f"/api/v1/certificates/{cert_id}/preview.png")
        verify_url = client.get(f"/api/v1/certificates/{cert_id}").get_json()["verify_url"]
        assert [b.text for b in zxingcpp.read_barcodes(png_of(preview))] == [verify_url]
        assert s3_bucket.keys() == [f"certificates/{cert_id}.pdf", f"certificates/{cert_id}.png"]
        head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=f"certificates/{cert_id}.png")
        assert head["ContentType"] == "image/png"

    def test_a_pdf_missing_from_the_bucket_is_rendered_again(self, s3_bucket, client, add_certificate):
        cert = add_certificate()
        s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=f"certificates/{cert.id}.pdf")

        response = client.get(f"/api/v1/certificates/{cert.id}/pdf")

        assert response.status_code == 200 and response.data.startswith(b"%PDF")
        assert s3_bucket.read(f"{cert.id}.pdf") == response.data

    def test_an_unreachable_store_is_503(self, s3_bucket, client, add_certificate, monkeypatch):
        cert = add_certificate()
        monkeypatch.setenv("CERTIFICATES_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
        for path in (f"{cert.id}/pdf", f"{cert.id}/preview.png"):
            response = client.get(f"/api/v1/certificates/{path}")
            assert response.status_code == 503, path
            assert response.get_json()["error"]["code"] == "storage_unavailable"
            assert response.headers["Retry-After"] == "5"
        # Details and verification do not need the store.
        assert client.get(f"/api/v1/certificates/{cert.id}").status_code == 200
        assert client.get(f"/api/v1/certificates/verify/{cert.verify_code}").status_code == 200


def test_a_misconfigured_storage_stops_the_start(env, monkeypatch):
    monkeypatch.setenv("CERTIFICATES_STORAGE", "s3")
    monkeypatch.delenv("CERTIFICATES_S3_BUCKET", raising=False)
    with pytest.raises(ValueError, match="CERTIFICATES_S3_BUCKET"):
        create_app(database_url=env)


def test_openapi_documents_every_endpoint(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert {"/api/v1/certificates/{certificate_id}", "/api/v1/certificates/{certificate_id}/pdf",
            "/api/v1/certificates/{certificate_id}/preview.png", "/api/v1/certificates/verify/{code}",
            "/api/v1/certificates/{certificate_id}/revoke"} <= set(paths)
    assert "image/png" in paths["/api/v1/certificates/{certificate_id}/preview.png"]["get"]["responses"]["200"][
        "content"]
