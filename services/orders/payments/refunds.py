"""Refunds: asked for in the transaction that decides them, sent to the provider outside it.

:func:`request` books the refund (a ``refunds`` row without a provider reference yet),
reverses the payment's split and queues ``orders.send_refund`` through the outbox, all in
the caller's transaction. The task then claims the refund in one unit of work, calls the
provider outside any transaction, and records the provider's reference in another
(claim → call → record): a provider that is slow or down never holds row locks, and a
refund that could not be sent is sent again by the next delivery of the message. The
provider call carries our refund id, which providers use to refund once however often
they are asked.

A refund's ``status``: ``requested`` once booked, ``processing`` once the provider took it,
``succeeded`` when the provider confirms the money is back with the payer (at once for
Alipay, the sandbox and testpay; WeChat Pay by its ``REFUND.SUCCESS`` notification or,
should that be lost, by the reconciliation's query: payments/reconcile.py), ``failed``
when the provider gave up on it (logged: an operator pays it back by hand).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from diandian_common.contracts import build
from diandian_common.outbox import enqueue
from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork

from ..models import Order, OutboxMessage, Refund
from ..records import for_update
from ..settlement import service as settlement
from . import providers
from .port import RefundResult

log = logging.getLogger(__name__)

SEND_REFUND_TASK = "orders.send_refund"
REQUESTED, PROCESSING, SUCCEEDED, FAILED = "requested", "processing", "succeeded", "failed"


def existing(session: Session, order_id: str) -> Refund | None:
    return session.scalars(select(Refund).where(Refund.order_id == order_id)).first()


def request(session: Session, order: Order, reason: str) -> Refund:
    """Book the refund of the order's payment and reverse its split (once per order)."""
    refund = existing(session, order.id)
    if refund is not None:
        return refund
    now = utcnow()
    refund = Refund(order_id=order.id, amount_fen=order.amount_fen, provider=order.payment_provider,
                    provider_reference=None, reason=reason[:200], created_at=now, status=REQUESTED)
    session.add(refund)
    settlement.reverse_capture(session, order, now)
    session.flush()
    enqueue(session, OutboxMessage, SEND_REFUND_TASK, build(SEND_REFUND_TASK, refund_id=refund.id))
    return refund


@dataclass(frozen=True)
class RefundToSend:
    refund_id: int
    order_id: str
    amount_fen: int
    provider: str


def claim(uow: UnitOfWork, refund_id: int) -> RefundToSend | None:
    """The refund to send, or None when it is unknown or sent already."""
    session = uow.session
    refund = session.scalars(for_update(session, select(Refund).where(Refund.id == refund_id))).first()
    if refund is None or refund.provider_reference is not None:
        return None
    return RefundToSend(refund.id, refund.order_id, refund.amount_fen, refund.provider)


def call(taken: RefundToSend) -> RefundResult:
    """The provider's refund (outside any transaction); returns its reference and status."""
    return providers.provider(taken.provider).refund(taken.order_id, taken.amount_fen, str(taken.refund_id))


def record(uow: UnitOfWork, taken: RefundToSend, result: RefundResult) -> bool:
    """Keep the provider's reference and status; False when another delivery recorded one
    first."""
    session = uow.session
    refund = session.scalars(for_update(session, select(Refund).where(Refund.id == taken.refund_id))).first()
    if refund is None or refund.provider_reference is not None:
        return False
    refund.provider_reference = result.reference[:100]
    if refund.status == REQUESTED:  # a notification may have confirmed it already
        refund.status = PROCESSING
    if result.succeeded:
        _settle(refund, True)
    return True


def _settle(refund: Refund, succeeded: bool) -> bool:
    if refund.status in (SUCCEEDED, FAILED):
        return False
    refund.status = SUCCEEDED if succeeded else FAILED
    refund.confirmed_at = utcnow()
    if not succeeded:
        log.error("refund %s of order %s failed at %s: it needs paying back by hand", refund.id,
                  refund.order_id, refund.provider, extra={"order_id": refund.order_id})
    return True


def settle(session: Session, order_id: str, refund_id: str, succeeded: bool) -> str:
    """The provider's word on our refund ``refund_id`` (its notification or our query):
    ``confirmed``, ``failed``, ``already_settled`` or ``unknown_refund``."""
    try:
        number = int(refund_id)
    except ValueError:
        return "unknown_refund"
    refund = session.scalars(for_update(session, select(Refund).where(Refund.id == number))).first()
    if refund is None or refund.order_id != order_id:
        log.warning("order %s: the provider reports refund %s, which is not its refund", order_id, refund_id)
        return "unknown_refund"
    if not _settle(refund, succeeded):
        return "already_settled"
    return "confirmed" if succeeded else "failed"


@dataclass(frozen=True)
class RefundToConfirm:
    refund_id: int
    order_id: str
    provider: str


def processing(session: Session, providers_asked: list[str], limit: int) -> list[RefundToConfirm]:
    """Sent refunds the providers have not confirmed yet, oldest first."""
    query = (select(Refund).where(Refund.status == PROCESSING, Refund.provider.in_(providers_asked))
             .order_by(Refund.created_at).limit(limit))
    return [RefundToConfirm(r.id, r.order_id, r.provider) for r in session.scalars(query)]
