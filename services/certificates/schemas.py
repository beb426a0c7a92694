"""Marshmallow schemas: the render message, the API's requests and its responses."""
from __future__ import annotations

from datetime import timezone

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate


class StrOrInt(fields.Field):
    """A project id or vintage: orders may send either a string or an integer."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("must be a string or an integer")
        if isinstance(value, str) and not 1 <= len(value) <= 100:
            raise ValidationError("must be 1 to 100 characters")
        return value


class LenientSchema(Schema):
    """Messages may grow new keys; a v1 worker ignores the ones it does not know."""

    class Meta:
        unknown = EXCLUDE


class ProjectSnapshotSchema(LenientSchema):
    id = StrOrInt(required=True)
    code = fields.String(required=True, validate=validate.Length(1, 100))
    name = fields.String(required=True, validate=validate.Length(1, 300))
    name_en = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=300))
    registry = fields.String(required=True, validate=validate.Length(1, 200))
    vintage = StrOrInt(required=True)


class SceneSnapshotSchema(LenientSchema):
    slug = fields.String(required=True, validate=validate.Length(1, 100))
    name = fields.String(required=True, validate=validate.Length(1, 300))


class RenderPayloadSchema(LenientSchema):
    """``certificates.render`` v1, sent by orders once the credits are retired."""

    order_id = fields.String(required=True, validate=validate.Length(1, 64))
    holder = fields.String(required=True, validate=validate.Length(1, 500))
    organization = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=500))
    quantity_kg = fields.Integer(required=True, validate=validate.Range(min=1))
    project = fields.Nested(ProjectSnapshotSchema, required=True)
    serial_range = fields.String(required=True, validate=validate.Length(1, 4000))
    scene = fields.Nested(SceneSnapshotSchema, allow_none=True, load_default=None)
    issued_at = fields.AwareDateTime(required=True, default_timezone=timezone.utc)
    ledger_hash = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=128))


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


class CertificateSchema(Schema):
    id = fields.String()
    number = fields.String()
    order_id = fields.String()
    holder = fields.String()
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


class VerificationSchema(Schema):
    valid = fields.Boolean(metadata={"description": "genuine and not revoked"})
    revoked = fields.Boolean()
    certificate = fields.Nested(CertificateSchema, metadata={"description": (
        "serial_range and ledger_hash tie it to the orders ledger; with mask_holder the holder "
        "is masked and id, order_id, pdf_url and preview_url are left out")})


class VerifyQuerySchema(Schema):
    mask_holder = fields.Boolean(load_default=False, metadata={
        "description": "hide most of the holder's name (and the links to the full certificate)"})


class RevokeSchema(Schema):
    reason = fields.String(required=True, validate=[
        validate.Length(1, 500), validate.Regexp(r"[\s\S]*\S", error="must not be blank")])
    # Refund the buyer too (orders refunds through the payment provider and reverses the split).
    refund = fields.Boolean(load_default=False)
