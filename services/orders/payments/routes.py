"""Routes of payments: the sandbox's confirmation and the providers' webhook (on the orders
blueprint)."""
from __future__ import annotations


from flask import make_response, request
from flask.views import MethodView
from sqlalchemy.exc import IntegrityError

from diandian_common.errors import ApiError, NotFound, error_body

from ..blueprint import blp
from ..ordering import identity
from ..wiring import unit_of_work
from . import checkout as checkouts
from . import providers, service
from .schemas import (
    CheckoutRequestSchema,
    CheckoutSchema,
    GenericPaymentEventSchema,
    PaymentAcceptedSchema,
    PaymentConfirmSchema,
    PaymentSignatureHeaderSchema,
    WebhookAcceptedSchema,
)


@blp.route("/orders/<string:order_id>/payment")
class OrderPayment(MethodView):
    @blp.arguments(PaymentConfirmSchema, required=False)
    @blp.response(202, PaymentAcceptedSchema)
    @blp.alt_response(403, description="not_your_order: the order is another guest's")
    @blp.alt_response(409, description="order_not_payable (cancelled or failed) or not_a_sandbox_order")
    def post(self, data, order_id):
        """Sandbox provider's confirmation by the order's participant (or an operator); paying
        twice changes nothing."""
        caller = identity.current_caller()
        with unit_of_work() as uow:
            return service.confirm_sandbox_payment(uow, order_id, (data or {}).get("reference"), caller)


@blp.route("/orders/<string:order_id>/checkout", methods=["POST"])
@blp.arguments(CheckoutRequestSchema)
@blp.response(200, CheckoutSchema)
@blp.alt_response(403, description="not_your_order: the order is another guest's")
@blp.alt_response(404, description="unknown order")
@blp.alt_response(409, description="order_not_payable: the order is no longer awaiting payment")
@blp.alt_response(502, description="payment_provider_error: the provider refused or did not answer")
def checkout(data, order_id):
    """Open the order's trade at a payment provider (its guest or an operator): the QR code,
    link or WeChat JSAPI parameters to pay it with ``method``."""
    caller = identity.current_caller()
    return checkouts.start(order_id, data["method"], data.get("provider"), data.get("openid"), caller)


@blp.route("/payments/<string:provider>/webhook", methods=["POST"])
@blp.response(200, WebhookAcceptedSchema)
@blp.alt_response(401, description="signature_missing")
@blp.alt_response(403, description="invalid_signature or stale_signature")
@blp.alt_response(404, description="unknown provider (or not configured), unknown order")
@blp.alt_response(409, description="amount_mismatch, provider_mismatch, event_id_reused")
@blp.alt_response(422, description="an authentic notification without what the provider's adapter needs")
# Documentation of what the view reads itself (the raw body is what is signed): the signature
# header and, for the generic provider testpay, its notification.
@blp.doc(parameters=[{"in": "header", "schema": PaymentSignatureHeaderSchema}],
         requestBody={"required": True, "description": "the provider's notification, as it signed it "
                                                       "(testpay's shown)",
                      "content": {"application/json": {"schema": GenericPaymentEventSchema}}})
def payment_webhook(provider):
    """A payment provider's signed notification (see services/orders/README.md).

    Each provider verifies its own (testpay: header ``Payment-Signature: t=<unix seconds>,
    v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`` with ``PAYMENT_WEBHOOK_SECRET_TESTPAY``)
    and is answered as it expects (testpay: the JSON documented here). The same event twice
    gets the same answer and changes nothing.
    """
    adapter = providers.webhook_provider(provider)
    if adapter is None:
        raise NotFound("payment provider", provider)
    raw = request.get_data(cache=True)
    try:
        note = adapter.verify(request.headers, raw)
        body_hash = note.fingerprint()
        try:
            with unit_of_work() as uow:
                answer = service.apply_payment_notification(uow, adapter.name, note, body_hash)
        except IntegrityError:
            # PostgreSQL: a twin delivery recorded the event first; answer as it did.
            with unit_of_work() as uow:
                answer = service.apply_payment_notification(uow, adapter.name, note, body_hash)
    except providers.NotificationRefused as exc:
        reply = adapter.refuse(exc.status, error_body(exc.status, exc.code, exc.message))
    except providers.InvalidNotification as exc:
        reply = adapter.refuse(422, error_body(422, "validation_error", "some fields are invalid", exc.fields))
    except ApiError as exc:
        reply = adapter.refuse(exc.status, error_body(exc.status, exc.code, exc.message, exc.fields))
    else:
        reply = adapter.acknowledge(answer)
    # In the provider's own shape (a Response is passed through, not dumped by the schema).
    return make_response(*reply)
