"""Refunds: asked for in the transaction that decides them, sent to the provider outside it.

:func:`request` books the refund (a ``refunds`` row without a provider reference yet),
reverses the payment's split and queues ``orders.send_refund`` through the outbox, all in
the caller's transaction. The task then claims the refund in one unit of work, calls the
provider outside any transaction, and records the provider's reference in another
(claim → call → record): a provider that is slow or down never holds row locks, and a
refund that could not be sent is sent again by the next delivery of the message. The
provider call carries our refund id, which providers use to refund once however often
they are asked.
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

log = logging.getLogger(__name__)

SEND_REFUND_TASK = "orders.send_refund"


def existing(session: Session, order_id: str) -> Refund | None:
    return session.scalars(select(Refund).where(Refund.order_id == order_id)).first()


def request(session: Session, order: Order, reason: str) -> Refund:
    """Book the refund of the order's payment and reverse its split (once per order)."""
    refund = existing(session, order.id)
    if refund is not None:
        return refund
    now = utcnow()
    refund = Refund(order_id=order.id, amount_fen=order.amount_fen, provider=order.payment_provider,
                    provider_reference=None, reason=reason[:200], created_at=now)
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


def call(taken: RefundToSend) -> str:
    """The provider's refund (outside any transaction); returns its reference."""
    return providers.provider(taken.provider).refund(taken.order_id, taken.amount_fen, str(taken.refund_id))


def record(uow: UnitOfWork, taken: RefundToSend, reference: str) -> bool:
    """Keep the provider's reference; False when another delivery recorded one first."""
    session = uow.session
    refund = session.scalars(for_update(session, select(Refund).where(Refund.id == taken.refund_id))).first()
    if refund is None or refund.provider_reference is not None:
        return False
    refund.provider_reference = reference[:100]
    return True
