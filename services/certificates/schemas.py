"""Marshmallow schemas of the API's requests and responses (the messages' are in
``diandian_common.contracts``)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from diandian_common.errors import ErrorDetailSchema


class ProjectSchema(Schema):
    id = fields.Raw()
    code = fields.String()
    name = fields.String()
    name_en = fields.String(allow_none=True)
    registry = fields.String()
    vintage = fields.Raw()


class SceneSchema(Schema):
    slug = fields.String()
    name = fields.String()
    name_en = fields.String(allow_none=True, metadata={
        "description": "the scene's English name; absent on certificates issued before it was recorded"})


class CertificateRegistryRecordSchema(Schema):
    cancellation_id = fields.String(metadata={"description": "the registry's id of the cancellation"})
    url = fields.String(metadata={"description": "the registry's record of it"})
    retired_on = fields.String(metadata={"format": "date",
                                         "description": "the day the registry cancelled the credits"})
    anchored_kg = fields.Integer(metadata={"description": "kilograms of this certificate it covers"})


class CertificateRegistrySchema(Schema):
    anchored_kg = fields.Integer(metadata={"description": "kilograms of this certificate anchored"})
    complete = fields.Boolean(metadata={"description": "true when every kilogram is anchored"})
    records = fields.List(fields.Nested(CertificateRegistryRecordSchema))


class CertificateSchema(Schema):
    id = fields.String()
    number = fields.String()
    order_id = fields.String()
    holder = fields.String()
    holder_masked = fields.Boolean(metadata={"description": (
        "the holder chose to appear masked in public: every verification shows the name masked")})
    organization = fields.String(allow_none=True)
    quantity_kg = fields.Integer()
    project = fields.Nested(ProjectSchema)
    serial_range = fields.String()
    scene = fields.Nested(SceneSchema, allow_none=True)
    ledger_hash = fields.String(allow_none=True)
    issued_at = fields.DateTime()
    status = fields.String(metadata={"enum": ["valid", "revoked"]})
    revoked_at = fields.DateTime(allow_none=True)
    verify_url = fields.String()
    pdf_url = fields.String()
    preview_url = fields.String(metadata={"description": "PNG of the certificate, 1200 px wide, "
                                                         "for sharing (og:image)"})
    registry = fields.Nested(CertificateRegistrySchema, allow_none=True, metadata={"description": (
        "the registry cancellations covering the certificate's serials; null while it awaits "
        "the registry's cancellation")})


class VerificationSchema(Schema):
    valid = fields.Boolean(metadata={"description": "genuine and not revoked"})
    revoked = fields.Boolean()
    certificate = fields.Nested(CertificateSchema, metadata={"description": (
        "serial_range and ledger_hash tie it to the orders ledger; masked (asked with mask_holder, "
        "or always when the holder chose it: holder_masked) the holder's name is masked and id, "
        "order_id, ledger_hash, pdf_url and preview_url are left out")})


class VerificationNotFoundSchema(Schema):
    """The answer to an altered or unknown code: the verification's ``valid`` with the
    platform's error."""

    valid = fields.Boolean(required=True, metadata={"enum": [False]})
    error = fields.Nested(ErrorDetailSchema, required=True)


class VerifyQuerySchema(Schema):
    mask_holder = fields.Boolean(load_default=False, metadata={
        "description": "hide most of the holder's name (and the links to the full certificate); "
                       "false never unmasks a holder who chose to be masked"})


class RevokeSchema(Schema):
    reason = fields.String(required=True, validate=[
        validate.Length(1, 500), validate.Regexp(r"[\s\S]*\S", error="must not be blank")])
    # Refund the buyer too (orders refunds through the payment provider and reverses the split).
    refund = fields.Boolean(load_default=False)
