"""Request and response schemas of the orders API (SPEC §4 "Projects and orders")."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

ID = validate.Length(min=1, max=64)
SLUG = validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,99}$", error="must be a scene slug (a-z, 0-9, -)")
MAX_ORDER_KG = 100_000_000  # 100 kt: more than any venue's event


class ParticipantSchema(Schema):
    id = fields.String(required=True, validate=ID)
    display_name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    organization = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class OrderCreateSchema(Schema):
    project_id = fields.String(required=True, validate=ID)
    quantity_kg = fields.Decimal(places=3, allow_nan=False, as_string=True,
                                 validate=validate.Range(min=0, max=MAX_ORDER_KG, min_inclusive=False))
    estimate_id = fields.String(validate=ID)
    participant = fields.Nested(ParticipantSchema, required=True)
    scene = fields.String(load_default=None, allow_none=True, validate=SLUG)

    @validates_schema
    def _quantity_or_estimate(self, data, **_kwargs):
        if ("quantity_kg" in data) == ("estimate_id" in data):
            raise ValidationError("give exactly one of quantity_kg and estimate_id", "quantity_kg")


class PaymentLinkSchema(Schema):
    provider = fields.String()
    checkout_url = fields.String()


class OrderCreatedSchema(Schema):
    id = fields.String()
    status = fields.String()
    project_id = fields.String()
    quantity_kg = fields.Integer()
    amount_fen = fields.Integer()
    currency = fields.String()
    expires_at = fields.String()
    payment = fields.Nested(PaymentLinkSchema)


class ProjectRefSchema(Schema):
    id = fields.String()
    code = fields.String()
    name = fields.String()
    name_en = fields.String()
    registry = fields.String()
    vintage = fields.Integer()


class RetirementSchema(Schema):
    serial_range = fields.String()
    serial_ranges = fields.List(fields.String())
    serial_first = fields.Integer()
    serial_last = fields.Integer()
    retired_at = fields.String()
    ledger_hash = fields.String(allow_none=True)


class CertificateRefSchema(Schema):
    id = fields.String()
    pdf_url = fields.String(allow_none=True)
    verify_url = fields.String(allow_none=True)


class SceneRefSchema(Schema):
    slug = fields.String()
    name = fields.String()


class OrderSchema(Schema):
    id = fields.String()
    status = fields.String()
    quantity_kg = fields.Integer()
    amount_fen = fields.Integer()
    currency = fields.String()
    project = fields.Nested(ProjectRefSchema)
    participant = fields.Nested(ParticipantSchema)
    scene = fields.Nested(SceneRefSchema, allow_none=True)
    payment = fields.Nested(PaymentLinkSchema)
    created_at = fields.String()
    expires_at = fields.String()
    paid_at = fields.String(allow_none=True)
    completed_at = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    retirement = fields.Nested(RetirementSchema, allow_none=True)
    certificate = fields.Nested(CertificateRefSchema, allow_none=True)


class PaymentConfirmSchema(Schema):
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))


class PaymentAcceptedSchema(Schema):
    id = fields.String()
    status = fields.String()


class ProjectSchema(Schema):
    id = fields.String()
    code = fields.String()
    name = fields.String()
    name_en = fields.String()
    type = fields.String()
    location = fields.String()
    registry = fields.String()
    vintage = fields.Integer()
    price_fen_per_tonne = fields.Integer()
    issued_kg = fields.Integer()
    reserved_kg = fields.Integer()
    retired_kg = fields.Integer()
    available_kg = fields.Integer()


class ProjectListSchema(Schema):
    items = fields.List(fields.Nested(ProjectSchema))


class LedgerQuerySchema(Schema):
    project = fields.String(validate=ID)
    after = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class LedgerEntrySchema(Schema):
    seq = fields.Integer()
    order_id = fields.String()
    project_id = fields.String()
    project_code = fields.String()
    registry = fields.String()
    vintage = fields.Integer()
    quantity_kg = fields.Integer()
    serial_ranges = fields.List(fields.String())
    retired_at = fields.String()
    prev_hash = fields.String()
    hash = fields.String()


class LedgerPageSchema(Schema):
    items = fields.List(fields.Nested(LedgerEntrySchema))
    next_after = fields.Integer(allow_none=True)
