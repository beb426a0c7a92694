"""Payment provider port.

An order is created with a provider; the provider tells the buyer where to pay and
confirms the payment. ``sandbox`` (the default, for demos and tests) confirms through
``POST /api/v1/orders/{id}/payment`` and the pages label it as a demo payment. A real
provider (WeChat Pay, Alipay) plugs in here with its own checkout and refund calls.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from diandian_common import config


class PaymentProvider(Protocol):
    name: str

    def checkout_url(self, order_id: str) -> str: ...

    def refund(self, order_id: str, amount_fen: int) -> str:
        """Refund a captured payment; returns the provider's refund reference."""


@dataclass
class SandboxProvider:
    """Demo payments: nothing is charged, so refunds only need a reference."""

    name: str = "sandbox"

    def checkout_url(self, order_id: str) -> str:
        return f"{config.public_base_url()}/pay/{order_id}"

    def refund(self, order_id: str, amount_fen: int) -> str:
        return f"sandbox-refund-{secrets.token_hex(6)}"


PROVIDERS: dict[str, PaymentProvider] = {"sandbox": SandboxProvider()}


def provider(name: str | None = None) -> PaymentProvider:
    name = name or config.env("PAYMENT_PROVIDER", "sandbox")
    try:
        return PROVIDERS[name]
    except KeyError:
        raise LookupError(f"unknown payment provider {name!r}; known: {sorted(PROVIDERS)}") from None
