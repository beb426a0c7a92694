"""Checkout: the guest chooses how to pay, and the provider opens the trade.

Claim → call → record: the order is checked (its guest's, still unpaid) in one unit of
work, the provider is called outside any transaction (a slow provider holds no lock), and
the opened trade is recorded in another. ``out_trade_no`` is the order id, so asking
again (a reload, another method of the same provider) reopens the same trade rather than
a second one; each provider an order has a trade with may confirm it.
"""

from __future__ import annotations

from sqlalchemy import select

from diandian_common.errors import ApiError, NotFound
from diandian_common.timestamps import as_utc
from diandian_common.uow import called_outside

from ..models import Order, PaymentCheckout
from ..ordering.domain import lifecycle
from ..ordering.identity import Caller, require_owner
from ..records import lock_order
from ..wiring import unit_of_work
from . import providers
from .port import CheckoutFacts, ProviderError


def _payable(order: Order | None, order_id: str, caller: Caller) -> Order:
    if order is None:
        raise NotFound("order", order_id)
    require_owner(caller, order)
    if order.status != lifecycle.PENDING_PAYMENT:
        raise ApiError(409, "order_not_payable", f"order {order.id} is {order.status}")
    return order


def start(order_id: str, method: str, provider_name: str | None, openid: str | None, caller: Caller) -> dict:
    """Open the order's trade at the provider that pays by ``method``; the 200 body."""
    with unit_of_work() as uow:
        order = _payable(uow.session.get(Order, order_id), order_id, caller)
        provider = providers.for_checkout(provider_name, method)
        facts = CheckoutFacts(
            order_id=order.id,
            amount_fen=order.amount_fen,
            currency=order.currency,
            description=f"点点碳中和 {order.quantity_kg} kg CO2e · {order.project.code}",
            expires_at=as_utc(order.expires_at),
            client_ip=caller.address,
        )
    called_outside(f"the payment provider {provider.name}")  # a lost connection below is not re-run
    try:
        opened = provider.checkout(facts, method, openid)
    except ProviderError as exc:
        raise ApiError(502, "payment_provider_error", str(exc)) from None
    with unit_of_work() as uow:
        order = _payable(lock_order(uow.session, order_id), order_id, caller)
        known = uow.session.scalars(
            select(PaymentCheckout).where(
                PaymentCheckout.order_id == order.id,
                PaymentCheckout.provider == provider.name,
                PaymentCheckout.method == method,
            )
        ).first()
        if known is None:
            uow.session.add(PaymentCheckout(order_id=order.id, provider=provider.name, method=method))
        order.payment_provider = provider.name  # the one the guest chose last
        return {
            "provider": provider.name,
            "method": method,
            **opened,
            "expires_at": as_utc(order.expires_at).isoformat(),
        }


def has_trade(session, order_id: str, provider: str) -> bool:
    """Did the order open a trade at ``provider``?"""
    return (
        session.scalars(
            select(PaymentCheckout.id).where(
                PaymentCheckout.order_id == order_id, PaymentCheckout.provider == provider
            )
        ).first()
        is not None
    )
