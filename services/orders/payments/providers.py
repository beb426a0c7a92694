"""Payment provider port.

An order is created with a provider; the provider tells the buyer where to pay, confirms
the payment and refunds it when the credits cannot be delivered.

- ``sandbox`` (the default in development, for ``make run`` and demos) is confirmed by
  ``POST /api/v1/orders/{id}/payment``; the pages label it "测试支付 · Sandbox — no money
  moves". It confirms any order for anybody, so production (``DIANDIAN_ENV=production``)
  refuses it: there ``PAYMENT_PROVIDER`` has no default, and the orders API refuses to
  start while it is unset or ``sandbox`` (:mod:`diandian_common.deployment`); should the
  environment change under a running process, new orders answer 503
  ``payment_unavailable`` saying why.
- A provider that confirms by calling ``POST /api/v1/payments/{provider}/webhook`` is a
  :class:`WebhookProvider`. It verifies its own notifications (each provider signs its
  own way) and says how the provider wants to be answered; the endpoint keeps what is the
  same for every provider — event-id replay protection, the amount and currency check and
  the idempotent confirmation (payments/service.py).
- ``testpay`` is such an adapter for tests and demos of that path: its notifications use
  the platform's own field names, signed ``HMAC-SHA256(secret, "<timestamp>.<raw body>")``
  with ``PAYMENT_WEBHOOK_SECRET_TESTPAY`` (domain/signatures.py), and nothing is charged.
  It takes webhooks only once its secret is configured.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from marshmallow import ValidationError

from diandian_common import config, deployment, strict_json
from diandian_common.errors import ApiError

from .domain import signatures
from .port import (CheckoutProvider, InvalidNotification, NotificationRefused, PaymentNotification,
                   PaymentProvider, RefundResult, Reply, TradeProvider, WebhookProvider,
                   webhook_tolerance_s)
from .schemas import GenericPaymentEventSchema
from .alipay import AlipayProvider
from .wechatpay import WeChatPayProvider


@dataclass
class SandboxProvider:
    """Demo payments: nothing is charged, so refunds only need a reference."""

    name: str = "sandbox"

    def checkout_url(self, order_id: str) -> str:
        return f"{config.public_base_url()}/pay/{order_id}"

    def refund(self, order_id: str, amount_fen: int, refund_id: str) -> RefundResult:
        return RefundResult(f"sandbox-refund-{refund_id}-{secrets.token_hex(6)}", True)


@dataclass
class TestPayProvider:
    """The generic signed-webhook provider used by tests and demos of the webhook path.

    Body: ``{"id", "type": "payment.succeeded"|…, "data": {"order_id", "amount_fen",
    "currency", "transaction_id"}}``, signed in ``Payment-Signature``; answered with the
    platform's JSON. Nothing is charged, so refunds only need a reference.
    """

    __test__ = False  # not a pytest test class, despite the name

    name: str = "testpay"
    signature_header: str = "Payment-Signature"

    def checkout_url(self, order_id: str) -> str:
        return f"{config.public_base_url()}/pay/{order_id}"

    def refund(self, order_id: str, amount_fen: int, refund_id: str) -> RefundResult:
        return RefundResult(f"testpay-refund-{refund_id}-{secrets.token_hex(6)}", True)

    def takes_webhooks(self) -> bool:
        return bool(webhook_secret(self.name))

    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> PaymentNotification:
        try:
            signatures.verify(webhook_secret(self.name) or "", headers.get(self.signature_header), raw_body,
                              time.time(), webhook_tolerance_s())
        except signatures.SignatureError as exc:
            raise NotificationRefused(401 if exc.code == "signature_missing" else 403, exc.code,
                                      exc.message) from None
        try:
            event = GenericPaymentEventSchema().load(strict_json.loads(raw_body))
        except (ValueError, RecursionError):
            raise InvalidNotification({"_body": ["must be a JSON object"]}) from None
        except ValidationError as exc:
            raise InvalidNotification(exc.messages if isinstance(exc.messages, dict)
                                      else {"_body": exc.messages}) from None
        data = event["data"]
        return PaymentNotification(
            event_id=event["id"], event_type=event["type"], succeeded=event["type"] == "payment.succeeded",
            order_id=data["order_id"], amount_fen=data["amount_fen"], currency=data["currency"],
            reference=data["transaction_id"])

    def acknowledge(self, answer: dict) -> Reply:
        return answer, 200, {}

    def refuse(self, status: int, error: dict) -> Reply:
        return error, status, {}


PROVIDERS: dict[str, PaymentProvider] = {p.name: p for p in (SandboxProvider(), TestPayProvider(),
                                                                WeChatPayProvider(), AlipayProvider())}


def provider(name: str | None = None) -> PaymentProvider:
    """A provider by name (an order's), or the one new orders use (``PAYMENT_PROVIDER``,
    ``sandbox`` unless set, in development only)."""
    default = None if deployment.is_production() else SandboxProvider.name
    name = name or config.env("PAYMENT_PROVIDER", default)
    if not name:
        raise LookupError("PAYMENT_PROVIDER is not set, and production has no default provider")
    try:
        return PROVIDERS[name]
    except KeyError:
        raise LookupError(f"unknown payment provider {name!r}; known: {sorted(PROVIDERS)}") from None


def enabled() -> list[str]:
    """``PAYMENT_PROVIDERS`` (comma-separated, the first one new orders start with), else
    ``PAYMENT_PROVIDER`` alone."""
    listed = [name.strip() for name in (config.env("PAYMENT_PROVIDERS", "") or "").split(",") if name.strip()]
    if listed:
        return listed
    try:
        return [provider().name]
    except LookupError:
        return []


def for_checkout(name: str | None, method: str) -> CheckoutProvider:
    """The enabled, configured provider that pays by ``method`` (``name`` if given); 422
    naming what is possible otherwise."""
    candidates = [PROVIDERS.get(n) for n in enabled() if name in (None, n)]
    usable = [p for p in candidates if isinstance(p, CheckoutProvider) and p.takes_webhooks()]
    for candidate in usable:
        if method in candidate.methods:
            return candidate
    offered = sorted(f"{p.name}:{m}" for p in usable for m in p.methods)
    raise ApiError(422, "validation_error", "some fields are invalid", {
        "method": [f"no enabled payment provider pays by {method!r}"
                   + (f" here; possible: {', '.join(offered)}" if offered else "")]})


def for_new_orders() -> PaymentProvider:
    """``PAYMENT_PROVIDER``, refusing orders that could never be paid (misconfiguration)."""
    try:
        chosen = provider(enabled()[0] if config.env("PAYMENT_PROVIDERS") else None)
    except LookupError as exc:
        raise ApiError(503, "payment_unavailable", str(exc)) from None
    if isinstance(chosen, SandboxProvider) and deployment.is_production():
        raise ApiError(503, "payment_unavailable",
                       "the sandbox provider confirms payments that never happened; it is refused "
                       "in production (DIANDIAN_ENV=production): set PAYMENT_PROVIDER to a real provider")
    if isinstance(chosen, WebhookProvider) and not chosen.takes_webhooks():
        raise ApiError(503, "payment_unavailable",
                       f"{chosen.name} takes no payments: it is not configured to verify its notifications "
                       f"(services/orders/README.md, Payments)")
    return chosen


def webhook_secret(name: str) -> str | None:
    return config.env(f"PAYMENT_WEBHOOK_SECRET_{name.upper()}")


def webhook_provider(name: str) -> WebhookProvider | None:
    """The provider when ``name`` takes webhooks here, else None."""
    candidate = PROVIDERS.get(name)
    if not isinstance(candidate, WebhookProvider) or not candidate.takes_webhooks():
        return None
    return candidate


def trade_providers() -> dict[str, TradeProvider]:
    """The providers whose trades can be queried and closed (WeChat Pay, Alipay)."""
    return {name: p for name, p in PROVIDERS.items() if isinstance(p, TradeProvider)}
