"""Applying the order's moves (domain/lifecycle.py) and announcing what they cause.

:func:`move` is the only place that changes an order's status: it asks the domain for the
transition (which refuses an illegal move) and turns the transition's events into outbox
messages and webhooks in the same transaction, so they go out if and only if the move is
committed. :func:`announce` sends a move's events again (the reconciler's re-send).
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from diandian_common.contracts import build
from diandian_common.outbox import enqueue
from diandian_common.timestamps import as_utc, iso

from ..models import LedgerEntry, Order, OutboxMessage
from ..payments import refunds
from ..webhooks import service as webhooks
from .domain import lifecycle
from .domain.lifecycle import Transition
from .views import order_view, serial_ranges


def move(session: Session, order: Order, name: str, *, reason: str | None = None) -> Transition:
    """Apply the move ``name`` to ``order`` and queue its events; IllegalMove if it cannot."""
    transition = lifecycle.transition(name, order.status)
    order.status = transition.after
    announce(session, order, transition.events, reason=reason)
    return transition


def announce(session: Session, order: Order, events: tuple[str, ...], *, reason: str | None = None) -> None:
    for event in events:
        _ANNOUNCERS[event](session, order, reason)


def _retirement_requested(session: Session, order: Order, _reason) -> None:
    enqueue(session, OutboxMessage, "orders.retire_credits", build("orders.retire_credits", order_id=order.id))


def _certificate_requested(session: Session, order: Order, _reason) -> None:
    session.flush()
    project = order.project
    entry = session.scalars(select(LedgerEntry).where(LedgerEntry.order_id == order.id)).first()
    enqueue(session, OutboxMessage, "certificates.render", build(
        "certificates.render",
        order_id=order.id,
        holder=order.display_name,
        organization=order.organization,
        quantity_kg=order.quantity_kg,
        project={"id": project.id, "code": project.code, "name": project.name,
                 "name_en": project.name_en, "registry": project.registry_name,
                 "vintage": project.vintage},
        serial_range=", ".join(serial_ranges(order, project)),
        scene={"slug": order.scene_slug, "name": order.scene_name,
               "name_en": order.scene_name_en} if order.scene_slug else None,
        issued_at=as_utc(order.retired_at).isoformat(),
        ledger_hash=entry.hash if entry else None,
        mask_holder=order.mask_name,
    ))


def _contribution_requested(session: Session, order: Order, _reason) -> None:
    enqueue(session, OutboxMessage, "ranking.record", build(
        "ranking.record",
        order_id=order.id,
        participant_id=order.participant_id,
        display_name=order.display_name,
        organization=order.organization,
        scene=order.scene_slug,
        quantity_kg=order.quantity_kg,
        occurred_at=as_utc(order.retired_at).isoformat(),
        mask_name=order.mask_name,
    ))


def certificate_event(order: Order, view: dict) -> dict:
    """The body of the certificate webhooks."""
    return {"id": order.certificate_id, "order_id": order.id, "verify_url": order.certificate_verify_url,
            "pdf_url": order.certificate_pdf_url, "holder": order.display_name, "organization": order.organization,
            "quantity_kg": order.quantity_kg, "project": view["project"], "scene": view["scene"],
            "serial_range": (view["retirement"] or {}).get("serial_range"),
            "issued_at": (view["retirement"] or {}).get("retired_at"),
            "revoked_at": iso(order.certificate_revoked_at), "revocation_reason": order.revocation_reason}


def _webhook(event_type: str, body=None):
    def emit(session: Session, order: Order, _reason) -> None:
        data = (lambda: body(order, order_view(session, order))) if body else (lambda: order_view(session, order))
        webhooks.emit(session, event_type, data, scene=order.scene_slug)
    return emit


def _refund_requested(session: Session, order: Order, reason: str | None) -> None:
    refunds.request(session, order, reason or "refunded")


_ANNOUNCERS = {
    lifecycle.RETIREMENT_REQUESTED: _retirement_requested,
    lifecycle.ORDER_PAID: _webhook(lifecycle.ORDER_PAID),
    lifecycle.CERTIFICATE_REQUESTED: _certificate_requested,
    lifecycle.CONTRIBUTION_REQUESTED: _contribution_requested,
    lifecycle.ORDER_COMPLETED: _webhook(lifecycle.ORDER_COMPLETED),
    lifecycle.CERTIFICATE_ISSUED: _webhook(lifecycle.CERTIFICATE_ISSUED, certificate_event),
    lifecycle.REFUND_REQUESTED: _refund_requested,
}
assert set(_ANNOUNCERS) == {e for m in lifecycle.MOVES.values() for e in m.events}, "an event nobody announces"
