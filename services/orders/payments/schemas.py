"""Request and response schemas of payments and provider notifications."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from ..schema_fields import ID


class PaymentConfirmSchema(Schema):
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))


class PaymentAcceptedSchema(Schema):
    id = fields.String()
    status = fields.String()


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


class PaymentSignatureHeaderSchema(Schema):
    """Documentation of the header a provider's webhook must carry (401 signature_missing
    without it, 403 when it does not verify)."""

    signature = fields.String(data_key="Payment-Signature", required=True, metadata={"description": (
        "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<raw body>\")>, the secret being "
        "PAYMENT_WEBHOOK_SECRET_<PROVIDER>")})


class WebhookAcceptedSchema(Schema):
    event_id = fields.String()
    order_id = fields.String()
    status = fields.String(metadata={"description": "the order's status after the call"})
    action = fields.String(metadata={"description": "paid, already_paid, refunded, manual_refund or ignored"})
