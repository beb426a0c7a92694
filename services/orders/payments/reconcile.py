"""Reconciliation with the providers (``orders.reconcile_payments``): nothing is lost
between us and WeChat Pay or Alipay.

- A notification that never arrived: an unpaid order older than
  ``PAYMENT_QUERY_AFTER_SECONDS`` with a trade at a provider that can be queried is asked
  after, and the provider's "paid" confirms it through the notification's own idempotent
  confirmation (amount and currency checked, the transaction id as reference).
- An order whose payment window passed: its trades are closed (then queried) before it is
  cancelled; paid meanwhile, it is confirmed instead. A provider that cannot be reached
  leaves the order unpaid for the next round, until ``PAYMENT_CLOSE_GIVE_UP_SECONDS`` after
  the window, when the expiry sweep cancels it anyway (ordering/service.py): a payment that
  still lands is refunded.
- A refund the provider has not confirmed (WeChat Pay's ``REFUND.SUCCESS`` lost) is
  queried.

Claim → call → record: the orders are read in one unit of work, the providers asked
outside any, and each order's outcome recorded in its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from diandian_common import config
from diandian_common.errors import ApiError
from diandian_common.timestamps import as_utc
from diandian_common.uow import UnitOfWork

from ..models import Order, PaymentCheckout
from ..ordering import service as ordering
from ..ordering.domain import lifecycle
from ..records import lock_order
from . import providers, refunds, service
from .domain import reconcile as rules
from .port import PaymentNotification, ProviderError, TradeNotFound, TradeState, reconcile_timing

log = logging.getLogger(__name__)


def batch_size() -> int:
    return config.env_int("PAYMENT_RECONCILE_BATCH", 100)


@dataclass(frozen=True)
class TradeToCheck:
    order_id: str
    expired: bool  # close the trades, then cancel
    providers: tuple[str, ...]


@dataclass(frozen=True)
class Asked:
    check: TradeToCheck
    answers: list[rules.Answer]
    paid: dict[str, TradeState]  # the paid trades' state, by provider


def claim(uow: UnitOfWork, now: datetime, limit: int) -> list[TradeToCheck]:
    """Unpaid orders with a trade at a provider that can be asked, whose query or close is
    due, oldest first."""
    session, due = uow.session, reconcile_timing()
    askable = sorted(providers.trade_providers())
    with_trade = select(PaymentCheckout.order_id).where(PaymentCheckout.provider.in_(askable))
    candidates = session.scalars(
        select(Order)
        .where(Order.status == lifecycle.PENDING_PAYMENT, Order.id.in_(with_trade),
               or_(Order.created_at <= now - due.query_after, Order.expires_at <= now),
               Order.expires_at > now - due.give_up_after)
        .order_by(Order.created_at)
        .limit(limit)
    ).all()
    checks = []
    for order in candidates:
        step = rules.step(as_utc(order.created_at), as_utc(order.expires_at), now, due)
        if step not in (rules.QUERY, rules.CLOSE):
            continue
        trades = session.scalars(
            select(PaymentCheckout.provider).where(PaymentCheckout.order_id == order.id,
                                                   PaymentCheckout.provider.in_(askable))
        ).all()
        checks.append(TradeToCheck(order.id, step == rules.CLOSE, tuple(sorted(set(trades)))))
    return checks


def ask(check: TradeToCheck) -> Asked:
    """Each provider's trade (closed first when the window passed), outside any transaction."""
    answers, paid = [], {}
    for name in check.providers:
        provider = providers.trade_providers()[name]
        closing_failed = None
        if check.expired:
            try:
                provider.close(check.order_id)
            except TradeNotFound:
                pass  # never opened there (an Alipay QR code nobody scanned): nothing to close
            except ProviderError as exc:  # paid meanwhile, or unreachable: the query says which
                closing_failed = str(exc)
        try:
            state = provider.trade(check.order_id)
        except TradeNotFound:
            answers.append(rules.Answer(name, rules.CLOSED, "no trade"))
            continue
        except ProviderError as exc:
            log.warning("order %s: %s could not be asked about its trade: %s", check.order_id, name, exc,
                        extra={"order_id": check.order_id})
            answers.append(rules.Answer(name, rules.UNREACHABLE, str(exc)))
            continue
        if state.paid:
            paid[name] = state
            answers.append(rules.Answer(name, rules.PAID, state.state))
        elif not state.open:
            answers.append(rules.Answer(name, rules.CLOSED, state.state))
        elif check.expired:  # still open: the close did not go through
            log.warning("order %s: %s did not close its trade: %s", check.order_id, name, closing_failed,
                        extra={"order_id": check.order_id})
            answers.append(rules.Answer(name, rules.UNREACHABLE, closing_failed or state.state))
        else:
            answers.append(rules.Answer(name, rules.OPEN, state.state))
    return Asked(check, answers, paid)


def record(uow: UnitOfWork, asked: Asked) -> str:
    """Act on the answers: ``paid`` (or what the confirmation did), ``cancelled``,
    ``left`` (asked again next round) or ``refused`` (a paid trade that does not match)."""
    check = asked.check
    decision, provider = rules.outcome(check.expired, asked.answers)
    if decision == rules.CONFIRM:
        state = asked.paid[provider]
        note = PaymentNotification(
            event_id=f"query:{state.reference}", event_type=f"query:{state.state}", succeeded=True,
            order_id=check.order_id, amount_fen=state.amount_fen, currency=state.currency,
            reference=str(state.reference))
        try:
            answer = service.apply_payment_notification(uow, provider, note, note.fingerprint())
        except ApiError as exc:
            log.error("order %s: %s reports it paid, but %s", check.order_id, provider, exc.message,
                      extra={"order_id": check.order_id})
            return "refused"
        log.info("order %s: %s says paid, its notification never came: %s", check.order_id, provider,
                 answer["action"], extra={"order_id": check.order_id})
        return answer["action"]
    if decision == rules.CANCEL:
        order = lock_order(uow.session, check.order_id)
        if order is None or order.status != lifecycle.PENDING_PAYMENT:
            return "left"
        ordering.cancel(uow.session, order, "payment window expired")
        return "cancelled"
    return "left"


def pending_refunds(uow: UnitOfWork, limit: int) -> list[refunds.RefundToConfirm]:
    return refunds.processing(uow.session, sorted(providers.trade_providers()), limit)


def ask_refund(taken: refunds.RefundToConfirm) -> bool | None:
    """The provider's word on the refund (outside any transaction); None: not yet, or no
    answer."""
    try:
        return providers.trade_providers()[taken.provider].refund_state(taken.order_id, str(taken.refund_id))
    except ProviderError as exc:
        log.warning("refund %s of order %s: %s could not be asked: %s", taken.refund_id, taken.order_id,
                    taken.provider, exc, extra={"order_id": taken.order_id})
        return None
