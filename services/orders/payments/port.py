"""The payment provider port: what the orders service needs of a provider, and what a
provider's adapter gives back (the adapters: providers.py, wechatpay.py)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar, runtime_checkable

from diandian_common import config

from .domain.reconcile import Timing

DEFAULT_TOLERANCE_S = 300


def webhook_tolerance_s() -> int:
    """How far a notification's signed timestamp may be from our clock."""
    return config.env_int("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", DEFAULT_TOLERANCE_S)


def reconcile_timing() -> Timing:
    """When the reconciliation queries an unpaid order's trades, and how long past its
    window it waits for them to close (payments/reconcile.py)."""
    return Timing(
        query_after=timedelta(seconds=config.env_int("PAYMENT_QUERY_AFTER_SECONDS", 120)),
        give_up_after=timedelta(seconds=config.env_int("PAYMENT_CLOSE_GIVE_UP_SECONDS", 3600)),
    )


class ProviderError(Exception):
    """The provider could not be asked, or refused (its own words in the message)."""


@dataclass(frozen=True)
class CheckoutFacts:
    """What a provider is told of the order to be paid."""

    order_id: str  # out_trade_no
    amount_fen: int
    currency: str
    description: str
    expires_at: datetime  # the provider closes the trade then too
    client_ip: str | None


@dataclass(frozen=True)
class PaymentNotification:
    """What the webhook endpoint needs to know from a provider's call."""

    event_id: str  # unique per provider: a second call with it changes nothing
    event_type: str  # the provider's own name for the event, kept for the record
    succeeded: bool  # the money was captured (other events are acknowledged, not acted on)
    order_id: str  # our order id, which the checkout passed to the provider
    amount_fen: int
    currency: str
    reference: str  # the provider's transaction id
    # A refund's notification: our refund id (``out_refund_no``) and whether it succeeded
    # (True), failed for good (False) or is still processing (None).
    refund_id: str | None = None
    refund_succeeded: bool | None = None

    def fingerprint(self) -> str:
        """What the notification says, hashed: a provider's retry of an event says the same
        even when its bytes differ (WeChat Pay encrypts each delivery anew), and an event id
        that comes back saying something else is refused."""
        said = [
            self.event_id,
            self.event_type,
            self.succeeded,
            self.order_id,
            self.amount_fen,
            self.currency,
            self.reference,
        ]
        if self.refund_id is not None:  # payment notifications hash as they always did
            said += [self.refund_id, self.refund_succeeded]
        return hashlib.sha256(json.dumps(said, ensure_ascii=False).encode()).hexdigest()


class TradeNotFound(ProviderError):
    """The provider has no such trade (never opened there, or not yet: an Alipay QR code
    that was never scanned)."""


@dataclass(frozen=True)
class TradeState:
    """What a provider's query says of an order's trade."""

    paid: bool  # the money was captured (refunded later or not)
    open: bool  # it may still be paid
    state: str  # the provider's own word (SUCCESS, NOTPAY, TRADE_CLOSED, …)
    amount_fen: int
    currency: str
    reference: str | None  # the provider's transaction id once paid


@dataclass(frozen=True)
class RefundResult:
    """The provider's answer to a refund: its reference, and whether the money is back
    with the payer already (else the provider confirms later, by notification or query)."""

    reference: str
    succeeded: bool


class InvalidNotification(Exception):
    """The (authentic) body does not hold what the adapter needs; ``fields`` says what."""

    def __init__(self, fields: dict):
        super().__init__("invalid payment notification")
        self.fields = fields


class PaymentProvider(Protocol):
    name: str

    def checkout_url(self, order_id: str) -> str: ...

    def refund(self, order_id: str, amount_fen: int, refund_id: str) -> RefundResult:
        """Refund a captured payment; returns the provider's refund reference and status.
        ``refund_id`` is ours: asked twice with it, a provider refunds once."""


class NotificationRefused(Exception):
    """The call is not the provider's (missing, wrong or stale signature): ``status`` and
    ``code`` for the answer."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# A reply to the provider: (body, status, headers), as a Flask view returns it.
Reply = tuple[object, int, dict]


@runtime_checkable
class WebhookProvider(Protocol):
    name: str

    def checkout_url(self, order_id: str) -> str: ...

    def refund(self, order_id: str, amount_fen: int, refund_id: str) -> RefundResult: ...

    def takes_webhooks(self) -> bool:
        """Configured to verify notifications here (its keys or secret are set)."""

    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> PaymentNotification:
        """The notification of an authentic call: raise :class:`NotificationRefused` when
        the call is not the provider's, :class:`InvalidNotification` when its body lacks
        what is needed."""

    def acknowledge(self, answer: dict) -> Reply:
        """The reply the provider expects when the notification was taken."""

    def refuse(self, status: int, error: dict) -> Reply:
        """The reply the provider expects when it was not (it will retry), from the
        platform's error body and status."""


@runtime_checkable
class CheckoutProvider(Protocol):
    """A provider whose trade is opened when the guest chooses how to pay
    (``POST /orders/{id}/checkout``)."""

    name: str
    methods: frozenset[str]

    def checkout(self, facts: CheckoutFacts, method: str, openid: str | None) -> dict:
        """Open the trade; the answer's method-specific part (``code_url``, ``h5_url``,
        ``jsapi``, ``qr_code`` or ``pay_url``). Raises :class:`ProviderError`."""


@runtime_checkable
class TradeProvider(Protocol):
    """A provider whose trades can be asked after (a notification lost on the way) and
    closed (an order that ends unpaid): the reconciliation (payments/reconcile.py)."""

    name: str

    def trade(self, order_id: str) -> TradeState:
        """The trade as the provider has it; :class:`TradeNotFound` when it has none,
        :class:`ProviderError` when it cannot be asked."""

    def close(self, order_id: str) -> None:
        """Close the unpaid trade: it can no longer be paid. :class:`ProviderError` when
        the provider refuses (paid meanwhile) or cannot be asked."""

    def refund_state(self, order_id: str, refund_id: str) -> bool | None:
        """Whether the refund ``refund_id`` succeeded: True, False (failed for good), None
        (still processing)."""


SettingsT = TypeVar("SettingsT")
ClientT = TypeVar("ClientT")


class SdkClients(Generic[SettingsT, ClientT]):
    """A provider's SDK client for its current settings, built once per settings (they
    change only when the environment does, e.g. between tests)."""

    def __init__(self, provider: str, variables: str, settings: Callable[[], SettingsT | None],
                 build: Callable[[SettingsT], ClientT]):
        self.provider, self.variables = provider, variables
        self._settings, self._build = settings, build
        self._clients: dict[SettingsT, ClientT] = {}
        self._lock = threading.Lock()

    def get(self) -> tuple[ClientT, SettingsT]:
        settings = self._settings()
        if settings is None:
            raise ProviderError(f"{self.provider} is not configured ({self.variables} settings)")
        with self._lock:
            if settings not in self._clients:
                self._clients[settings] = self._build(settings)
            return self._clients[settings], settings
