"""Confirming payments: the sandbox's confirmation and the providers' signed notifications."""
from __future__ import annotations

import logging
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from diandian_common import deployment
from diandian_common.errors import ApiError, NotFound
from diandian_common.timestamps import as_utc, utcnow
from diandian_common.uow import UnitOfWork

from ..models import Order, PaymentEvent
from ..ordering import lifecycle as moves
from ..ordering import service as ordering
from ..ordering.domain import lifecycle
from ..ordering.identity import Caller, require_owner
from ..records import lock_order
from ..settlement import service as settlement
from . import checkout, refunds
from .providers import PaymentNotification

log = logging.getLogger(__name__)


def confirm_payment(session: Session, order_id: str, reference: str | None = None, *,
                    accept_late: bool = False) -> Order:
    """Mark paid and, in the same transaction, queue the retirement.

    ``accept_late``: a provider captured the money after the payment window but before
    the sweep cancelled the order; the reservation is still held, so deliver.
    """
    order = lock_order(session, order_id)
    if order is None:
        raise NotFound("order", order_id)
    if order.status == lifecycle.PENDING_PAYMENT and not accept_late and as_utc(order.expires_at) <= utcnow():
        ordering.cancel(session, order, "payment window expired")
    if order.status in (lifecycle.CANCELLED, lifecycle.FAILED):
        raise ApiError(409, "order_not_payable", f"order {order.id} is {order.status}")
    if order.status != lifecycle.PENDING_PAYMENT:
        return order  # paid already: paying twice changes nothing
    order.paid_at = utcnow()
    order.payment_reference = reference or f"{order.payment_provider}-{secrets.token_hex(6)}"
    settlement.record_capture(session, order, order.project, order.paid_at)
    moves.move(session, order, "pay")
    return order


def confirm_sandbox_payment(uow: UnitOfWork, order_id: str, reference: str | None, caller: Caller) -> dict:
    """The sandbox provider's confirmation (``POST /orders/{id}/payment``) by the order's
    participant or an operator."""
    if deployment.is_production():  # a sandbox order left from a demo must not become paid
        raise ApiError(403, "sandbox_disabled", "the sandbox provider confirms no payment in production")
    order = lock_order(uow.session, order_id)
    if order is not None:
        require_owner(caller, order)
    if order is not None and order.payment_provider != "sandbox":
        raise ApiError(409, "not_a_sandbox_order", f"order {order_id} is paid through {order.payment_provider}")
    order = confirm_payment(uow.session, order_id, reference)
    return {"id": order.id, "status": order.status}


def apply_payment_notification(uow: UnitOfWork, provider: str, note: PaymentNotification,
                               body_hash: str) -> dict:
    """Act once on an authentic provider notification; returns the webhook's answer.

    The same event again (a provider retry, or a replay inside the signature tolerance)
    gets the first answer and changes nothing; the same event id with another body is
    refused. Only events that were acted on are stored, so a refused call (unknown
    order, wrong amount) is refused again when retried.
    """
    session = uow.session
    order = lock_order(session, note.order_id)  # serialises twin deliveries of one event
    if order is None:
        raise NotFound("order", note.order_id)
    seen = session.scalars(select(PaymentEvent).where(PaymentEvent.provider == provider,
                                                      PaymentEvent.event_id == note.event_id)).first()
    if seen is not None:
        if seen.body_hash != body_hash:
            raise ApiError(409, "event_id_reused", f"{provider} event {note.event_id} arrived with another body")
        return seen.response_body
    if order.payment_provider != provider and not checkout.has_trade(session, order.id, provider):
        raise ApiError(409, "provider_mismatch", f"order {order.id} is paid through {order.payment_provider}")
    action = "ignored"
    if note.refund_id is not None and note.refund_succeeded is not None:
        action = refunds.settle(session, order.id, note.refund_id, note.refund_succeeded)
    elif note.succeeded:
        if (note.amount_fen, note.currency) != (order.amount_fen, order.currency):
            raise ApiError(409, "amount_mismatch",
                           f"{provider} reports {note.amount_fen} {note.currency}; "
                           f"order {order.id} is {order.amount_fen} {order.currency}")
        action = _apply_captured_payment(session, order, provider, note.reference)
    body = {"event_id": note.event_id, "order_id": order.id, "status": order.status, "action": action}
    session.add(PaymentEvent(provider=provider, event_id=note.event_id, event_type=note.event_type,
                             order_id=order.id, amount_fen=note.amount_fen, currency=note.currency,
                             reference=note.reference, body_hash=body_hash, response_body=body,
                             received_at=utcnow()))
    return body


def _apply_captured_payment(session: Session, order: Order, provider: str, reference: str) -> str:
    if order.status in (lifecycle.PENDING_PAYMENT, lifecycle.CANCELLED):
        # The provider that took the money is the order's (its fee, its refunds), whichever
        # the guest opened last.
        order.payment_provider = provider
    if order.status == lifecycle.PENDING_PAYMENT:
        confirm_payment(session, order.id, reference, accept_late=True)
        return "paid"
    if order.status == lifecycle.CANCELLED:
        # The money arrived after the sweep released the credits: give it back.
        if refunds.existing(session, order.id) is not None:
            log.error("order %s: a second late payment %s needs a manual refund", order.id, reference)
            return "manual_refund"
        order.payment_reference = reference
        # Captured and given back at once: the split is booked and reversed together.
        settlement.record_capture(session, order, order.project)
        moves.move(session, order, "refund", reason="payment arrived after the order was cancelled")
        return "refunded"
    if provider != order.payment_provider:
        # Paid twice, through two providers: the second payment is given back by hand.
        log.error("order %s was paid through %s (%s); %s also took payment %s: it needs a manual refund",
                  order.id, order.payment_provider, order.payment_reference, provider, reference)
        return "manual_refund"
    if reference != order.payment_reference:
        log.warning("order %s was paid as %s; %s also reports payment %s",
                    order.id, order.payment_reference, order.payment_provider, reference)
    return "already_paid"  # paying twice changes nothing
