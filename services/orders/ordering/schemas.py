"""Request and response schemas of placing and reading orders."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from diandian_common.contract_fields import Visible

from ..ledger.schemas import RegistryCoverageSchema
from ..schema_fields import ID, MAX_ORDER_KG, NOT_BLANK, SLUG
from .domain import lifecycle as states
from .domain.idempotency import MAX_KEY_LENGTH


class ParticipantSchema(Schema):
    # Assigned by the platform (the browser's cookie); only an operator key with the guests
    # scope names a guest here, and the id becomes "<key id>~<id>".
    id = fields.String(validate=validate.Length(min=1, max=48), metadata={"description": (
        "leave out: the platform assigns it; an operator key with the guests scope names its guest "
        "here (stored as <key id>~<id>)")})
    # A name must print something: spaces or zero-width characters alone are refused.
    display_name = fields.String(required=True, validate=[validate.Length(min=1, max=100), Visible()])
    organization = fields.String(load_default=None, allow_none=True,
                                 validate=[validate.Length(max=200), Visible()])
    # The guest's choice to appear as "张*" on the public leaderboards.
    mask_name = fields.Boolean(load_default=False)


def _orderable_kg(value) -> None:
    # Not validate.Range: the OpenAPI document would print a Decimal's bounds as strings.
    if not 0 < value <= MAX_ORDER_KG:
        raise ValidationError(f"must be greater than 0 and at most {MAX_ORDER_KG}")


class OrderCreateSchema(Schema):
    project_id = fields.String(required=True, validate=ID)
    quantity_kg = fields.Decimal(places=3, allow_nan=False, as_string=True, validate=_orderable_kg,
                                 metadata={"minimum": 0, "exclusiveMinimum": True, "maximum": MAX_ORDER_KG})
    estimate_id = fields.String(validate=ID)
    participant = fields.Nested(ParticipantSchema, required=True)
    scene = fields.String(load_default=None, allow_none=True, validate=SLUG)

    @validates_schema
    def _quantity_or_estimate(self, data, **_kwargs):
        if ("quantity_kg" in data) == ("estimate_id" in data):
            raise ValidationError("give exactly one of quantity_kg and estimate_id", "quantity_kg")


class IdempotencyKeyHeaderSchema(Schema):
    """Documentation of the header ``POST /orders`` requires (idempotency.key_from_request reads
    and checks it), so that generated clients send it."""

    key = fields.String(data_key="Idempotency-Key", required=True,
                        validate=[validate.Length(min=1, max=MAX_KEY_LENGTH), NOT_BLANK],
                        metadata={"description": (
                            "a new random value (a UUID) per order the guest means to place: the same key "
                            "with the same body answers the same order (Idempotent-Replayed: true), with "
                            "another body 409 idempotency_conflict")})


class PaymentOptionSchema(Schema):
    provider = fields.String(metadata={"description": "wechatpay or alipay"})
    methods = fields.List(fields.String(), metadata={
        "description": "what POST /orders/{id}/checkout takes as method with this provider"})


class PaymentLinkSchema(Schema):
    provider = fields.String()
    checkout_url = fields.String()
    options = fields.List(fields.Nested(PaymentOptionSchema), metadata={
        "description": "the order view: the providers the guest may pay with at checkout "
                       "(none: sandbox only)"})


class OrderCreatedSchema(Schema):
    id = fields.String()
    status = fields.String()
    project_id = fields.String()
    quantity_kg = fields.Integer()
    amount_fen = fields.Integer()
    currency = fields.String()
    expires_at = fields.String()
    participant = fields.Nested(ParticipantSchema)
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
    registry = fields.Nested(RegistryCoverageSchema, allow_none=True, metadata={
        "description": "the registry cancellations covering the retired serials; null: none yet"})


class CertificateRefSchema(Schema):
    id = fields.String()
    pdf_url = fields.String(allow_none=True)
    verify_url = fields.String(allow_none=True)
    revoked_at = fields.String(allow_none=True)


class RefundRefSchema(Schema):
    amount_fen = fields.Integer()
    reason = fields.String()
    refunded_at = fields.String(allow_none=True, metadata={"description": "when the refund was booked"})
    status = fields.String(metadata={
        "description": "requested (booked), processing (the provider took it), succeeded (the provider "
                       "confirmed the money is back with the payer) or failed (paid back by hand)"})
    confirmed_at = fields.String(allow_none=True, metadata={
        "description": "when the provider confirmed (or gave up on) the refund"})


class SceneRefSchema(Schema):
    slug = fields.String()
    name = fields.String()


class OrderSchema(Schema):
    """An order. participant, payment, certificate and refund are present only for the
    order's participant and operators."""
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
    refund = fields.Nested(RefundRefSchema, allow_none=True)


class OrderListQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(states.ALL))
    project = fields.String(validate=ID, metadata={"description": "project id or code"})
    scene = fields.String(validate=SLUG)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    after = fields.String(validate=ID, metadata={"description": "next_after of the previous page"})


class OrderPageSchema(Schema):
    items = fields.List(fields.Nested(OrderSchema))
    next_after = fields.String(allow_none=True)


# A guest's own orders (GET /api/v1/my-orders): a phone shows a few at a time.
MY_ORDERS_MAX_LIMIT = 50


class MyOrdersQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MY_ORDERS_MAX_LIMIT))
    before = fields.String(validate=ID, metadata={"description": "next_before of the previous page"})


class MyOrdersPageSchema(Schema):
    items = fields.List(fields.Nested(OrderSchema), metadata={"description": "newest first"})
    next_before = fields.String(allow_none=True, metadata={"description": "null: this is the last page"})
