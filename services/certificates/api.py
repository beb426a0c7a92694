"""Public API of the certificates service (docs/contract.md §5, routes tagged certificates)."""
from __future__ import annotations

import re

from flask import Response, jsonify

from diandian_common.auth import operator_required
from diandian_common.errors import NotFound, error_body, error_response
from diandian_common.uow import UnitOfWork
from diandian_common.web import Blueprint

from . import service
from .models import STATUS_REVOKED, Certificate
from .preview import PREVIEW_WIDTH_PX
from .schemas import (
    CertificateSchema,
    RevokeSchema,
    VerificationNotFoundSchema,
    VerificationSchema,
    VerifyQuerySchema,
)
from .service import public_view, stored_pdf, stored_preview
from .storage import StorageUnavailable, storage_from_env
from .wiring import unit_of_work

blp = Blueprint("certificates", __name__, url_prefix="/api/v1",
                description="Certificates of honour: details, PDF, preview, verification, revocation")


@blp.errorhandler(StorageUnavailable)
def _storage_unavailable(exc: StorageUnavailable):
    # The object store is down or refusing: a temporary condition, not the request's fault.
    return error_response(503, "storage_unavailable", "certificate storage is unavailable; try again",
                          headers={"Retry-After": "5"})


# Anything else cannot be a certificate id; refusing it early also keeps bytes such as NUL,
# which PostgreSQL rejects in text parameters, away from the database.
CERTIFICATE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _checked_id(certificate_id: str) -> str:
    if not CERTIFICATE_ID.fullmatch(certificate_id):
        raise NotFound("certificate", repr(certificate_id[:64]))
    return certificate_id


def _get(uow: UnitOfWork, certificate_id: str) -> Certificate:
    cert = service.get_certificate(uow, _checked_id(certificate_id))
    if cert is None:
        raise NotFound("certificate", certificate_id)
    return cert


@blp.route("/certificates/<certificate_id>")
@blp.response(200, CertificateSchema)
def get_certificate(certificate_id: str):
    with unit_of_work() as uow:
        return public_view(_get(uow, certificate_id))


@blp.route("/certificates/<certificate_id>/pdf")
@blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf",
              description="The certificate; its QR code decodes to verify_url")
def get_certificate_pdf(certificate_id: str):
    with unit_of_work() as uow:
        cert = _get(uow, certificate_id)
    pdf = stored_pdf(storage_from_env(), cert)
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{cert.number}.pdf"'
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@blp.route("/certificates/<certificate_id>/preview.png")
@blp.response(200, {"type": "string", "format": "binary"}, content_type="image/png",
              description=f"The certificate's first page, {PREVIEW_WIDTH_PX} px wide, for sharing "
                          "(og:image); made from the PDF on first request and kept next to it")
def get_certificate_preview(certificate_id: str):
    with unit_of_work() as uow:
        cert = _get(uow, certificate_id)
    response = Response(stored_preview(storage_from_env(), cert), mimetype="image/png")
    # Made to be fetched by link-preview crawlers: public, like the share page showing it.
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@blp.route("/certificates/verify/<code>")
@blp.arguments(VerifyQuerySchema, location="query")
@blp.response(200, VerificationSchema, description="A genuine code; valid is false once revoked")
@blp.alt_response(404, schema=VerificationNotFoundSchema, description="Altered or unknown code")
def verify_certificate(query: dict, code: str):
    with unit_of_work() as uow:
        cert = service.find_by_code(uow, code)
    if cert is None:
        # The contract's {valid: false} together with the platform's error shape.
        response = jsonify({"valid": False, **error_body(
            404, "not_found", "no certificate has this verification code")})
        response.status_code = 404
        return response
    revoked = cert.status == STATUS_REVOKED
    return {"valid": not revoked, "revoked": revoked,
            # A holder who chose to be masked is masked in every verification, whatever is asked.
            "certificate": public_view(cert, mask_holder=query["mask_holder"] or cert.holder_masked)}


@blp.route("/certificates/<certificate_id>/revoke", methods=["POST"])
@operator_required
@blp.arguments(RevokeSchema)
@blp.response(200, CertificateSchema)
def revoke(body: dict, certificate_id: str):
    """Revoke a certificate (operator key); ranking removes the order's kilograms."""
    with unit_of_work() as uow:  # its messages are relayed after the commit
        cert = service.revoke(uow, _checked_id(certificate_id), body["reason"], refund=body["refund"])
        if cert is None:
            raise NotFound("certificate", certificate_id)
    return public_view(cert)
