"""Public API of the certificates service (SPEC §4 "Certificates")."""
from __future__ import annotations

import re

from flask import Response, jsonify
from flask_smorest import Blueprint

from diandian_common.auth import operator_required
from diandian_common.errors import NotFound, error_body
from diandian_common.outbox import try_relay
from diandian_common.web import db

from .issuance import find_by_code, public_view, revoke_certificate, stored_pdf
from .models import STATUS_REVOKED, Certificate, OutboxMessage
from .schemas import CertificateSchema, RevokeSchema, VerificationSchema, VerifyQuerySchema
from .storage import storage_from_env
from .tasks import celery

blp = Blueprint("certificates", __name__, url_prefix="/api/v1",
                description="Certificates of honour: details, PDF, verification, revocation")


# Anything else cannot be a certificate id; refusing it early also keeps bytes such as NUL,
# which PostgreSQL rejects in text parameters, away from the database.
CERTIFICATE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _checked_id(certificate_id: str) -> str:
    if not CERTIFICATE_ID.fullmatch(certificate_id):
        raise NotFound("certificate", repr(certificate_id[:64]))
    return certificate_id


def _get(session, certificate_id: str) -> Certificate:
    cert = session.get(Certificate, _checked_id(certificate_id))
    if cert is None:
        raise NotFound("certificate", certificate_id)
    return cert


@blp.route("/certificates/<certificate_id>")
@blp.response(200, CertificateSchema)
def get_certificate(certificate_id: str):
    with db().transaction() as session:
        return public_view(_get(session, certificate_id))


@blp.route("/certificates/<certificate_id>/pdf")
@blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf",
              description="The certificate; its QR code decodes to verify_url")
def get_certificate_pdf(certificate_id: str):
    with db().transaction() as session:
        cert = _get(session, certificate_id)
    pdf = stored_pdf(storage_from_env(), cert)
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{cert.number}.pdf"'
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@blp.route("/certificates/verify/<code>")
@blp.arguments(VerifyQuerySchema, location="query")
@blp.response(200, VerificationSchema, description="A genuine code; valid is false once revoked")
@blp.alt_response(404, description="Altered or unknown code: {valid: false, error: {...}}")
def verify_certificate(query: dict, code: str):
    with db().transaction() as session:
        cert = find_by_code(session, code)
    if cert is None:
        # The SPEC's {valid: false} together with the platform's error shape.
        response = jsonify({"valid": False, **error_body(
            404, "not_found", "no certificate has this verification code")})
        response.status_code = 404
        return response
    revoked = cert.status == STATUS_REVOKED
    return {"valid": not revoked, "revoked": revoked,
            "certificate": public_view(cert, mask_holder=query["mask_holder"])}


@blp.route("/certificates/<certificate_id>/revoke", methods=["POST"])
@operator_required
@blp.arguments(RevokeSchema)
@blp.response(200, CertificateSchema)
def revoke(body: dict, certificate_id: str):
    """Revoke a certificate (operator key); ranking removes the order's kilograms."""
    with db().transaction() as session:
        cert = revoke_certificate(session, _checked_id(certificate_id), body["reason"])
        if cert is None:
            raise NotFound("certificate", certificate_id)
    try_relay(db(), OutboxMessage, celery)
    return public_view(cert)
