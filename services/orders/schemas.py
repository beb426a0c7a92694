"""Request and response schemas of the orders API (SPEC §4 "Projects and orders")."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from .domain import settlement as settlement_rules
from .domain import states
from .domain import webhooks as webhook_rules

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
    revoked_at = fields.String(allow_none=True)


class RefundRefSchema(Schema):
    amount_fen = fields.Integer()
    reason = fields.String()
    refunded_at = fields.String(allow_none=True)


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
    refund = fields.Nested(RefundRefSchema, allow_none=True)


class PaymentConfirmSchema(Schema):
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))


class PaymentAcceptedSchema(Schema):
    id = fields.String()
    status = fields.String()


class OwnerRefSchema(Schema):
    id = fields.String()
    name = fields.String()


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
    owner = fields.Nested(OwnerRefSchema, allow_none=True, metadata={"description": "who receives the money"})
    fee_bps = fields.Integer(metadata={"description": "the platform's fee in basis points of each payment"})
    fee_min_fen = fields.Integer(metadata={"description": "the platform's minimum fee per payment"})
    low_inventory_threshold_kg = fields.Integer(metadata={"description": "project.low_inventory below this"})
    owner_net_fen = fields.Integer(metadata={"description": "the owners' share of payments, less refunds"})
    paid_to_owner_fen = fields.Integer(metadata={"description": "transferred to the owners so far"})


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
MAX_FEE_MIN_FEN = 100_000_000  # ¥1,000,000
MAX_THRESHOLD_KG = 10**12


def settlement_fields(loading_defaults: bool) -> dict:
    """Owner, fee rule and low-inventory threshold, accepted when creating and changing a project."""
    defaults = {"load_default": 0} if loading_defaults else {}
    return {
        "owner_id": fields.String(allow_none=True, validate=ID, metadata={"description": "an owner's id; null: none"}),
        "fee_bps": fields.Integer(strict=True, validate=validate.Range(min=0, max=settlement_rules.BASIS_POINTS),
                                  metadata={"description": "platform fee, basis points (500 = 5 %)"}, **defaults),
        "fee_min_fen": fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_FEE_MIN_FEN),
                                      metadata={"description": "minimum platform fee per payment"}, **defaults),
        "low_inventory_threshold_kg": fields.Integer(
            strict=True, allow_none=True, validate=validate.Range(min=0, max=MAX_THRESHOLD_KG),
            metadata={"description": "null: LOW_INVENTORY_THRESHOLD_KG"}),
    }


class ProjectCreateSchema(Schema.from_dict(settlement_fields(True))):
    code = fields.String(required=True, validate=PROJECT_CODE)
    name = text(200, required=True)
    name_en = text(200, required=True)
    type = fields.String(required=True, validate=PROJECT_TYPE)
    location = text(200, required=True)
    registry = fields.String(load_default="CDCER", validate=REGISTRY)
    vintage = fields.Integer(required=True, strict=True, validate=validate.Range(min=1990, max=2100))
    price_fen_per_tonne = fields.Integer(required=True, strict=True, validate=PRICE)


class ProjectUpdateSchema(Schema.from_dict(settlement_fields(False))):
    """Price, owner, fee rule, threshold and descriptive fields. Code, registry and vintage
    name the serials already retired, so they never change."""

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


# --- settlement -----------------------------------------------------------------------

PERIOD = validate.Regexp(settlement_rules.PERIOD_PATTERN.pattern, error="a month, YYYY-MM")


class OwnerCreateSchema(Schema):
    name = text(200, required=True, metadata={"description": "the company"})
    payout_account = text(100, required=True, metadata={"description": "bank account or payee reference"})
    contact = text(200, required=True, metadata={"description": "who to call about payouts"})


class OwnerUpdateSchema(Schema):
    name = text(200)
    payout_account = text(100)
    contact = text(200)

    @validates_schema
    def _something_to_change(self, data, **_kwargs):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class OwnerSchema(Schema):
    id = fields.String()
    name = fields.String()
    payout_account = fields.String()
    contact = fields.String()
    created_at = fields.String()


class OwnerListSchema(Schema):
    items = fields.List(fields.Nested(OwnerSchema))


class SettlementQuerySchema(Schema):
    project = fields.String(validate=ID, metadata={"description": "project id or code"})
    period = fields.String(validate=PERIOD, metadata={"description": "YYYY-MM; every month when absent"})
    owner = fields.String(validate=ID, metadata={"description": "owner id"})


class StatementSchema(Schema):
    owner = fields.Nested(OwnerSchema, allow_none=True,
                          metadata={"description": "null: the project had no owner when the money came in"})
    project_id = fields.String()
    project_code = fields.String()
    project_name = fields.String()
    period = fields.String()
    status = fields.String(metadata={"description": "open (month not over), due or settled"})
    orders = fields.Integer(metadata={"description": "paid orders less refunded ones"})
    refunds = fields.Integer()
    quantity_kg = fields.Integer()
    captured_fen = fields.Integer()
    refunded_fen = fields.Integer()
    gross_fen = fields.Integer(metadata={"description": "captured − refunded = fee + net"})
    fee_fen = fields.Integer()
    net_fen = fields.Integer(metadata={"description": "the owner's share"})
    paid_fen = fields.Integer(metadata={"description": "payouts recorded against the statement"})
    due_fen = fields.Integer()


class StatementListSchema(Schema):
    items = fields.List(fields.Nested(StatementSchema))


class PayoutCreateSchema(Schema):
    owner_id = fields.String(required=True, validate=ID)
    project_id = fields.String(required=True, validate=ID)
    period = fields.String(required=True, validate=PERIOD)
    amount_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**13))
    reference = text(100, required=True, metadata={"description": "the transfer's reference; unique"})
    paid_on = fields.Date(required=True, metadata={"description": "the day the money was sent"})
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class PayoutSchema(Schema):
    id = fields.String()
    owner_id = fields.String()
    project_id = fields.String()
    period = fields.String()
    amount_fen = fields.Integer()
    reference = fields.String()
    paid_on = fields.String()
    note = fields.String(allow_none=True)
    recorded_at = fields.String()


class PayoutListSchema(Schema):
    items = fields.List(fields.Nested(PayoutSchema))


class ReconciliationSchema(Schema):
    ok = fields.Boolean()
    difference = fields.String(allow_none=True, metadata={"description": "the first difference found"})
    projects = fields.Integer()
    captured_fen = fields.Integer()
    refunded_fen = fields.Integer()
    owners_net_fen = fields.Integer()
    platform_fees_fen = fields.Integer()
    settled_kg = fields.Integer(metadata={"description": "ledger kilograms of orders in settled statements"})
    pending_kg = fields.Integer(metadata={"description": "ledger kilograms of orders not paid out yet"})


class LedgerSummaryItemSchema(Schema):
    project_id = fields.String()
    project_code = fields.String()
    name = fields.String()
    name_en = fields.String()
    owner = fields.Nested(OwnerRefSchema, allow_none=True)
    retired_kg = fields.Integer()
    owner_net_fen = fields.Integer()
    paid_to_owner_fen = fields.Integer()


class LedgerTotalsSchema(Schema):
    retired_kg = fields.Integer()
    owner_net_fen = fields.Integer()
    paid_to_owner_fen = fields.Integer()


class LedgerSummarySchema(Schema):
    items = fields.List(fields.Nested(LedgerSummaryItemSchema))
    total = fields.Nested(LedgerTotalsSchema)


# --- outbound webhooks ----------------------------------------------------------------

class WebhookCreateSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=webhook_rules.MAX_URL_LENGTH))
    events = fields.List(fields.String(validate=validate.OneOf(webhook_rules.EVENT_TYPES)), required=True,
                         validate=validate.Length(min=1, max=len(webhook_rules.EVENT_TYPES)))
    scene = fields.String(load_default=None, allow_none=True, validate=SLUG,
                          metadata={"description": "only this scene's events; all events when absent"})
    description = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class WebhookUpdateSchema(Schema):
    url = fields.String(validate=validate.Length(min=1, max=webhook_rules.MAX_URL_LENGTH))
    events = fields.List(fields.String(validate=validate.OneOf(webhook_rules.EVENT_TYPES)),
                         validate=validate.Length(min=1, max=len(webhook_rules.EVENT_TYPES)))
    description = fields.String(allow_none=True, validate=validate.Length(max=200))
    active = fields.Boolean(truthy={True}, falsy={False}, metadata={"description": "false disables the endpoint"})

    @validates_schema
    def _something_to_change(self, data, **_kwargs):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class WebhookSchema(Schema):
    id = fields.String()
    url = fields.String()
    events = fields.List(fields.String())
    scene = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    active = fields.Boolean()
    created_at = fields.String()
    updated_at = fields.String()


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(metadata={"description": "signs every delivery; shown this once"})


class WebhookListSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema))


class DeliveryQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(("pending", "succeeded", "failed")))
    event_type = fields.String(validate=validate.OneOf(webhook_rules.EVENT_TYPES))
    event_id = fields.String(validate=ID)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    after = fields.Integer(validate=validate.Range(min=1), metadata={"description": "next_after of the previous page"})


class DeliveryEventSchema(Schema):
    id = fields.String()
    type = fields.String()
    created_at = fields.String()


class AttemptSchema(Schema):
    attempt = fields.Integer()
    started_at = fields.String()
    duration_ms = fields.Integer()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    succeeded = fields.Boolean()


class DeliverySchema(Schema):
    id = fields.Integer()
    endpoint_id = fields.String()
    event = fields.Nested(DeliveryEventSchema)
    status = fields.String(metadata={"description": "pending, succeeded or failed (after the last retry)"})
    attempts = fields.Integer()
    next_attempt_at = fields.String(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    delivered_at = fields.String(allow_none=True)
    created_at = fields.String()
    log = fields.List(fields.Nested(AttemptSchema))


class DeliveryPageSchema(Schema):
    items = fields.List(fields.Nested(DeliverySchema))
    next_after = fields.Integer(allow_none=True)


class CertificateRevokedSchema(Schema):
    """Payload of ``orders.certificate_revoked`` (sent by the certificates service)."""

    class Meta:
        unknown = EXCLUDE

    order_id = fields.String(required=True, validate=ID)
    certificate_id = fields.String(required=True, validate=ID)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    refund = fields.Boolean(load_default=False)
