"""The certificates API: details, PDF (with re-rendering), verification, revocation."""
from __future__ import annotations

import pypdfium2 as pdfium
import pytest
import zxingcpp
from sqlalchemy import select

from certificates.app import create_app
from certificates.domain.verification import VerificationCodes, new_verify_token
from certificates.models import Certificate, OutboxMessage

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
            "organization": "Acme", "quantity_kg": 850, "project": cert.project,
            "serial_range": cert.serial_range, "scene": {"slug": "expo", "name": "Expo"},
            "ledger_hash": "ab" * 32, "issued_at": "2026-11-25T02:00:00+00:00", "status": "valid",
            "revoked_at": None, "verify_url": f"{PUBLIC_BASE_URL}/v/{cert.verify_code}",
            "pdf_url": f"{PUBLIC_BASE_URL}/api/v1/certificates/{cert.id}/pdf",
        }

    @pytest.mark.parametrize("path", ["cert_missing", "cert_missing/pdf", "x" * 300, "%00", "é"])
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


class TestVerify:
    def test_a_genuine_code(self, client, add_certificate):
        cert = add_certificate()
        response = client.get(f"/api/v1/certificates/verify/{cert.verify_code}")
        assert response.status_code == 200
        body = response.get_json()
        assert body["valid"] is True and body["revoked"] is False
        assert body["certificate"]["id"] == cert.id
        assert body["certificate"]["holder"] == "Jane Doe"

    def test_the_holder_can_be_masked(self, client, add_certificate):
        cert = add_certificate(holder="张三丰")
        body = client.get(f"/api/v1/certificates/verify/{cert.verify_code}?mask_holder=true").get_json()
        assert body["certificate"]["holder"] == "张**"

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
        assert outbox(database) == [("ranking.revoke", {"v": 1, "order_id": cert.order_id})]
        assert broker.published("ranking") == [("ranking.revoke", {"v": 1, "order_id": cert.order_id})]
        with database.transaction() as session:
            assert session.get(Certificate, cert.id).revocation_reason == "order refunded"

        verified = client.get(f"/api/v1/certificates/verify/{cert.verify_code}")
        assert verified.status_code == 200
        assert verified.get_json()["valid"] is False and verified.get_json()["revoked"] is True
        assert verified.get_json()["certificate"]["status"] == "revoked"

    def test_revoking_twice_changes_nothing(self, client, add_certificate, database, broker):
        cert = add_certificate()
        first = revoke(client, cert.id).get_json()
        second = revoke(client, cert.id, reason="again")
        assert second.status_code == 200 and second.get_json() == first
        assert [task for task, _ in outbox(database)] == ["ranking.revoke"]

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


def test_openapi_documents_every_endpoint(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert {"/api/v1/certificates/{certificate_id}", "/api/v1/certificates/{certificate_id}/pdf",
            "/api/v1/certificates/verify/{code}",
            "/api/v1/certificates/{certificate_id}/revoke"} <= set(paths)
