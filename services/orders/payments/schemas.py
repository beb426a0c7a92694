"""Request and response schemas of payments and provider notifications."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from ..schema_fields import ID


class PaymentConfirmSchema(Schema):
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))


class PaymentAcceptedSchema(Schema):
    id = fields.String()
    status = fields.String()


# --- checkout --------------------------------------------------------------------------

CHECKOUT_METHODS = ("native", "h5", "jsapi", "qr", "wap")


class CheckoutRequestSchema(Schema):
    method = fields.String(required=True, validate=validate.OneOf(CHECKOUT_METHODS), metadata={
        "description": ("WeChat Pay: native (a QR code for large screens), h5 (phone browsers), jsapi "
                        "(inside WeChat); Alipay: qr, wap")})
    provider = fields.String(validate=validate.Length(min=1, max=20), metadata={
        "description": "wechatpay or alipay; by default the first enabled provider that pays by method"})
    openid = fields.String(validate=validate.Length(min=1, max=128), metadata={
        "description": "jsapi: the guest's openid for the merchant's WeChat app id"})


class JsapiParametersSchema(Schema):
    """What WeixinJSBridge's getBrandWCPayRequest takes."""
    appId = fields.String()  # noqa: N815 (WeChat's names)
    timeStamp = fields.String()  # noqa: N815
    nonceStr = fields.String()  # noqa: N815
    package = fields.String()
    signType = fields.String()  # noqa: N815
    paySign = fields.String()  # noqa: N815


class CheckoutSchema(Schema):
    provider = fields.String()
    method = fields.String()
    code_url = fields.String(metadata={"description": "native: show as a QR code"})
    h5_url = fields.String(metadata={"description": "h5: open in the phone's browser"})
    jsapi = fields.Nested(JsapiParametersSchema, metadata={"description": "jsapi: for getBrandWCPayRequest"})
    qr_code = fields.String(metadata={"description": "qr: show as a QR code"})
    pay_url = fields.String(metadata={"description": "wap: open in the phone's browser"})
    expires_at = fields.String(metadata={"description": "the trade closes with the order's payment window"})


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
