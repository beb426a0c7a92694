"""Request and response schemas of the orders API (SPEC §4 "Projects and orders")."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from .domain import states

ID = validate.Length(min=1, max=64)
SLUG = validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,63}$", error="must be a scene slug (a-z, 0-9, -)")
MAX_ORDER_KG = 100_000_000  # 100 kt: more than any venue's event
MAX_SERIAL = 999_999_999    # serial ranges print serials with 9 digits (SPEC §4)
MAX_PRICE_FEN_PER_TONNE = 100_000_000  # ¥1,000,000 a tonne: far above any market price
NOT_BLANK = validate.Regexp(r"^\s*\S", error="must not be blank")


def text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=max_length), NOT_BLANK], **kwargs)


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


class LedgerVerificationSchema(Schema):
    algorithm = fields.String()
    body = fields.String()
    canonical_json = fields.String()
    hash = fields.String()
    genesis_prev_hash = fields.String()


class LedgerPageWithVerificationSchema(LedgerPageSchema):
    verification = fields.Nested(LedgerVerificationSchema,
                                 metadata={"description": "how to recompute every entry's hash"})


# --- operators: projects, issuances, order lists --------------------------------------

PROJECT_CODE = validate.Regexp(r"^[A-Z0-9][A-Z0-9-]{1,63}$",
                               error="2 to 64 characters: capital letters, digits and -")
PROJECT_TYPE = validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$",
                               error="a lower-case identifier such as forestry_carbon_sink")
REGISTRY = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}$", error="1 to 40 letters, digits, . _ -")
PRICE = validate.Range(min=1, max=MAX_PRICE_FEN_PER_TONNE)


class ProjectCreateSchema(Schema):
    code = fields.String(required=True, validate=PROJECT_CODE)
    name = text(200, required=True)
    name_en = text(200, required=True)
    type = fields.String(required=True, validate=PROJECT_TYPE)
    location = text(200, required=True)
    registry = fields.String(load_default="CDCER", validate=REGISTRY)
    vintage = fields.Integer(required=True, strict=True, validate=validate.Range(min=1990, max=2100))
    price_fen_per_tonne = fields.Integer(required=True, strict=True, validate=PRICE)


class ProjectUpdateSchema(Schema):
    """Price and descriptive fields. Code, registry and vintage name the serials already
    retired, so they never change."""

    name = text(200)
    name_en = text(200)
    type = fields.String(validate=PROJECT_TYPE)
    location = text(200)
    price_fen_per_tonne = fields.Integer(strict=True, validate=PRICE)

    @validates_schema
    def _something_to_change(self, data, **_kwargs):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class IssuanceCreateSchema(Schema):
    first = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_SERIAL))
    last = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_SERIAL))

    @validates_schema
    def _ordered(self, data, **_kwargs):
        if "first" in data and "last" in data and data["last"] < data["first"]:
            raise ValidationError("must be ≥ first", "last")


class IssuanceSchema(Schema):
    id = fields.Integer()
    project_id = fields.String()
    first = fields.Integer()
    last = fields.Integer()
    quantity_kg = fields.Integer()
    issued_at = fields.String()
    project = fields.Nested(ProjectSchema)


class OrderListQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(states.ALL))
    project = fields.String(validate=ID, metadata={"description": "project id or code"})
    scene = fields.String(validate=SLUG)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    after = fields.String(validate=ID, metadata={"description": "next_after of the previous page"})


class OrderPageSchema(Schema):
    items = fields.List(fields.Nested(OrderSchema))
    next_after = fields.String(allow_none=True)


# --- payment provider webhooks --------------------------------------------------------

class GenericPaymentDataSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # providers add fields over time

    order_id = fields.String(required=True, validate=ID)
    amount_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10**15))
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$", error="an ISO 4217 code"))
    transaction_id = fields.String(required=True, validate=validate.Length(min=1, max=100))


class GenericPaymentEventSchema(Schema):
    """Body of the generic signed provider (``testpay``)."""

    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    type = fields.String(required=True, validate=validate.Length(min=1, max=64))
    created_at = fields.String(validate=validate.Length(max=64))
    data = fields.Nested(GenericPaymentDataSchema, required=True)


class WebhookAcceptedSchema(Schema):
    event_id = fields.String()
    order_id = fields.String()
    status = fields.String(metadata={"description": "the order's status after the call"})
    action = fields.String(metadata={"description": "paid, already_paid, refunded, manual_refund or ignored"})
