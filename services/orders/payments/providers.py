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
  :class:`WebhookProvider`. The endpoint does everything that is the same for every
  provider — the HMAC signature over ``"<timestamp>.<raw body>"`` with the secret from
  ``PAYMENT_WEBHOOK_SECRET_<PROVIDER>``, the timestamp tolerance, event-id replay
  protection, the amount check and the confirmation — so an adapter only maps the
  provider's notification to a :class:`PaymentNotification`.
- ``testpay`` is such an adapter for tests and demos of that path: its notifications use
  the platform's own field names and nothing is charged. It takes webhooks only once its
  secret is configured.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from marshmallow import ValidationError

from diandian_common import config, deployment, strict_json
from diandian_common.errors import ApiError

from .schemas import GenericPaymentEventSchema

DEFAULT_TOLERANCE_S = 300


@dataclass(frozen=True)
class PaymentNotification:
    """What the webhook endpoint needs to know from a provider's call."""

    event_id: str      # unique per provider: a second call with it changes nothing
    event_type: str    # the provider's own name for the event, kept for the record
    succeeded: bool    # the money was captured (other events are acknowledged, not acted on)
    order_id: str      # our order id, which the checkout passed to the provider
    amount_fen: int
    currency: str
    reference: str     # the provider's transaction id


class InvalidNotification(Exception):
    """The (authentic) body does not hold what the adapter needs; ``fields`` says what."""

    def __init__(self, fields: dict):
        super().__init__("invalid payment notification")
        self.fields = fields


class PaymentProvider(Protocol):
    name: str

    def checkout_url(self, order_id: str) -> str: ...

    def refund(self, order_id: str, amount_fen: int, refund_id: str) -> str:
        """Refund a captured payment; returns the provider's refund reference. ``refund_id``
        is ours: asked twice with it, a provider refunds once."""


@runtime_checkable
class WebhookProvider(Protocol):
    name: str
    signature_header: str

    def checkout_url(self, order_id: str) -> str: ...

    def refund(self, order_id: str, amount_fen: int, refund_id: str) -> str: ...

    def notification(self, raw_body: bytes) -> PaymentNotification:
        """Map an authenticated call's body; raise :class:`InvalidNotification` when it
        lacks what is needed."""


@dataclass
class SandboxProvider:
    """Demo payments: nothing is charged, so refunds only need a reference."""

    name: str = "sandbox"

    def checkout_url(self, order_id: str) -> str:
        return f"{config.public_base_url()}/pay/{order_id}"

    def refund(self, order_id: str, amount_fen: int, refund_id: str) -> str:
        return f"sandbox-refund-{refund_id}-{secrets.token_hex(6)}"


@dataclass
class TestPayProvider:
    """The generic signed-webhook provider used by tests and demos of the webhook path.

    Body: ``{"id", "type": "payment.succeeded"|…, "data": {"order_id", "amount_fen",
    "currency", "transaction_id"}}``. Nothing is charged, so refunds only need a reference.
    """

    __test__ = False  # not a pytest test class, despite the name

    name: str = "testpay"
    signature_header: str = "Payment-Signature"

    def checkout_url(self, order_id: str) -> str:
        return f"{config.public_base_url()}/pay/{order_id}"

    def refund(self, order_id: str, amount_fen: int, refund_id: str) -> str:
        return f"testpay-refund-{refund_id}-{secrets.token_hex(6)}"

    def notification(self, raw_body: bytes) -> PaymentNotification:
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


PROVIDERS: dict[str, PaymentProvider] = {p.name: p for p in (SandboxProvider(), TestPayProvider())}


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


def for_new_orders() -> PaymentProvider:
    """``PAYMENT_PROVIDER``, refusing orders that could never be paid (misconfiguration)."""
    try:
        chosen = provider()
    except LookupError as exc:
        raise ApiError(503, "payment_unavailable", str(exc)) from None
    if isinstance(chosen, SandboxProvider) and deployment.is_production():
        raise ApiError(503, "payment_unavailable",
                       "the sandbox provider confirms payments that never happened; it is refused "
                       "in production (DIANDIAN_ENV=production): set PAYMENT_PROVIDER to a real provider")
    if isinstance(chosen, WebhookProvider) and not webhook_secret(chosen.name):
        raise ApiError(503, "payment_unavailable",
                       f"{chosen.name} takes no payments: PAYMENT_WEBHOOK_SECRET_{chosen.name.upper()} is not set")
    return chosen


def webhook_secret(name: str) -> str | None:
    return config.env(f"PAYMENT_WEBHOOK_SECRET_{name.upper()}")


def webhook_provider(name: str) -> tuple[WebhookProvider, str] | None:
    """The provider and its secret when ``name`` takes webhooks here, else None."""
    candidate = PROVIDERS.get(name)
    if not isinstance(candidate, WebhookProvider):
        return None
    secret = webhook_secret(name)
    return (candidate, secret) if secret else None


def webhook_tolerance_s() -> int:
    return config.env_int("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", DEFAULT_TOLERANCE_S)
