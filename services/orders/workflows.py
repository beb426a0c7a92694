"""The order's life, one transaction per step (used by api.py and tasks.py).

Every function takes an open session inside a transaction; the caller commits. Each
step checks the order's current status first, so running it twice has one effect.
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, text
from sqlalchemy.orm import Session, object_session, selectinload

from diandian_common import config
from diandian_common.errors import ApiError, NotFound
from diandian_common.outbox import enqueue, utcnow

from . import payments, settlement, webhooks
from .db_helpers import as_utc, for_update as _for_update, iso, new_id
from .domain import allocation, ledger, pricing, states
from .domain import webhooks as wh
from .models import (IdempotencyRecord, LedgerEntry, Order, OutboxMessage, PaymentEvent, Project,
                     Refund, Retirement, SerialBlock)

log = logging.getLogger(__name__)

MIN_IDEMPOTENCY_TTL_HOURS = 24  # clients retrying the next day must still get their order back
DEFAULT_LOW_INVENTORY_KG = 10_000  # 10 t


def idempotency_ttl() -> timedelta:
    return timedelta(hours=max(MIN_IDEMPOTENCY_TTL_HOURS, config.env_int("IDEMPOTENCY_TTL_HOURS", 48)))


def order_ttl() -> timedelta:
    return timedelta(minutes=config.env_int("ORDER_PAYMENT_TIMEOUT_MINUTES", 30))


def lock_project(session: Session, project_id: str) -> Project | None:
    return session.scalars(_for_update(session, select(Project).where(Project.id == project_id))).first()


def lock_order(session: Session, order_id: str) -> Order | None:
    return session.scalars(_for_update(session, select(Order).where(Order.id == order_id))).first()


# --- placing an order -----------------------------------------------------------------

def find_idempotent(session: Session, key: str) -> IdempotencyRecord | None:
    record = session.get(IdempotencyRecord, key)
    if record is not None and as_utc(record.expires_at) < utcnow():
        session.delete(record)
        session.flush()
        return None
    return record


def create_order(session: Session, *, key: str, fingerprint: str, project_id: str, requested_kg,
                 participant: dict, scene: dict | None, estimate_id: str | None) -> dict:
    """Reserve the kilograms and create a ``pending_payment`` order; returns the 201 body."""
    project = lock_project(session, project_id)
    if project is None:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {"project_id": [f"unknown project {project_id}"]})
    try:
        quantity = pricing.round_up_kg(requested_kg)
    except ValueError:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {"quantity_kg": ["must be greater than 0"]}) from None
    if quantity > project.available_kg:
        raise ApiError(409, "insufficient_credits",
                       f"{project.code} has {project.available_kg} kg available, {quantity} kg requested")
    provider = payments.for_new_orders()
    order = Order(
        id=new_id("ord"), status=states.PENDING_PAYMENT, project_id=project.id,
        quantity_kg=quantity, requested_kg=str(requested_kg),
        amount_fen=pricing.amount_fen(quantity, project.price_fen_per_tonne), currency="CNY",
        participant_id=participant["id"], display_name=participant["display_name"],
        organization=participant.get("organization"),
        mask_name=bool(participant.get("mask_name", False)),
        scene_slug=scene["slug"] if scene else None, scene_name=scene["name"] if scene else None,
        estimate_id=estimate_id, payment_provider=provider.name,
        created_at=utcnow(), expires_at=utcnow() + order_ttl(),
    )
    available_before = project.available_kg
    project.reserved_kg += quantity
    session.add(order)
    _announce_low_inventory(session, project, available_before)
    body = created_view(order, provider.checkout_url(order.id))
    session.add(IdempotencyRecord(key=key, request_hash=fingerprint, order_id=order.id,
                                  response_status=201, response_body=body,
                                  expires_at=utcnow() + idempotency_ttl()))
    return body


def low_inventory_threshold(project: Project) -> int:
    if project.low_inventory_threshold_kg is not None:
        return project.low_inventory_threshold_kg
    return config.env_int("LOW_INVENTORY_THRESHOLD_KG", DEFAULT_LOW_INVENTORY_KG)


def _announce_low_inventory(session: Session, project: Project, available_before: int) -> None:
    """``project.low_inventory`` each time an order takes the available kilograms below
    the threshold (they come back above it by issuances and released reservations)."""
    threshold = low_inventory_threshold(project)
    if project.available_kg < threshold <= available_before:
        webhooks.emit(session, wh.PROJECT_LOW_INVENTORY, {
            "project": {"id": project.id, "code": project.code, "name": project.name, "name_en": project.name_en},
            "available_kg": project.available_kg, "threshold_kg": threshold, "issued_kg": project.issued_kg,
        })


def purge_idempotency_keys(session: Session, now: datetime | None = None) -> int:
    """Forget keys past their TTL (a periodic task); returns how many were deleted."""
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= (now or utcnow())))
    return result.rowcount or 0


def created_view(order: Order, checkout_url: str) -> dict:
    return {
        "id": order.id, "status": order.status, "project_id": order.project_id,
        "quantity_kg": order.quantity_kg, "amount_fen": order.amount_fen, "currency": order.currency,
        "expires_at": order.expires_at.isoformat(),
        "payment": {"provider": order.payment_provider, "checkout_url": checkout_url},
    }


# --- payment --------------------------------------------------------------------------

def confirm_payment(session: Session, order_id: str, reference: str | None = None, *,
                    accept_late: bool = False) -> Order:
    """Mark paid and, in the same transaction, queue the retirement (SPEC §3 step 2).

    ``accept_late``: a provider captured the money after the payment window but before
    the sweep cancelled the order; the reservation is still held, so deliver.
    """
    order = lock_order(session, order_id)
    if order is None:
        raise NotFound("order", order_id)
    if order.status == states.PENDING_PAYMENT and not accept_late and as_utc(order.expires_at) <= utcnow():
        _cancel(session, order, "payment window expired")
    if order.status in (states.CANCELLED, states.FAILED):
        raise ApiError(409, "order_not_payable", f"order {order.id} is {order.status}")
    if order.status != states.PENDING_PAYMENT:
        return order  # paid already: paying twice changes nothing
    order.status = states.PAID
    order.paid_at = utcnow()
    order.payment_reference = reference or f"{order.payment_provider}-{secrets.token_hex(6)}"
    settlement.record_capture(session, order, order.project, order.paid_at)
    enqueue(session, OutboxMessage, "orders.retire_credits", {"order_id": order.id})
    webhooks.emit(session, wh.ORDER_PAID, lambda: order_view(session, order), scene=order.scene_slug)
    return order


def apply_payment_notification(session: Session, provider: str, note: payments.PaymentNotification,
                               body_hash: str) -> dict:
    """Act once on an authentic provider notification; returns the webhook's answer.

    The same event again (a provider retry, or a replay inside the signature tolerance)
    gets the first answer and changes nothing; the same event id with another body is
    refused. Only events that were acted on are stored, so a refused call (unknown
    order, wrong amount) is refused again when retried.
    """
    order = lock_order(session, note.order_id)  # serialises twin deliveries of one event
    if order is None:
        raise NotFound("order", note.order_id)
    seen = session.scalars(select(PaymentEvent).where(PaymentEvent.provider == provider,
                                                      PaymentEvent.event_id == note.event_id)).first()
    if seen is not None:
        if seen.body_hash != body_hash:
            raise ApiError(409, "event_id_reused", f"{provider} event {note.event_id} arrived with another body")
        return seen.response_body
    if order.payment_provider != provider:
        raise ApiError(409, "provider_mismatch", f"order {order.id} is paid through {order.payment_provider}")
    action = "ignored"
    if note.succeeded:
        if (note.amount_fen, note.currency) != (order.amount_fen, order.currency):
            raise ApiError(409, "amount_mismatch",
                           f"{provider} reports {note.amount_fen} {note.currency}; "
                           f"order {order.id} is {order.amount_fen} {order.currency}")
        action = _apply_captured_payment(session, order, note.reference)
    body = {"event_id": note.event_id, "order_id": order.id, "status": order.status, "action": action}
    session.add(PaymentEvent(provider=provider, event_id=note.event_id, event_type=note.event_type,
                             order_id=order.id, amount_fen=note.amount_fen, currency=note.currency,
                             reference=note.reference, body_hash=body_hash, response_body=body,
                             received_at=utcnow()))
    return body


def _apply_captured_payment(session: Session, order: Order, reference: str) -> str:
    if order.status == states.PENDING_PAYMENT:
        confirm_payment(session, order.id, reference, accept_late=True)
        return "paid"
    if order.status == states.CANCELLED:
        # The money arrived after the sweep released the credits: give it back.
        if session.scalars(select(Refund).where(Refund.order_id == order.id)).first() is not None:
            log.error("order %s: a second late payment %s needs a manual refund", order.id, reference)
            return "manual_refund"
        order.payment_reference = reference
        # Captured and given back at once: the split is booked and reversed together.
        settlement.record_capture(session, order, order.project)
        _refund(session, order, "payment arrived after the order was cancelled")
        return "refunded"
    if reference != order.payment_reference:
        log.warning("order %s was paid as %s; %s also reports payment %s",
                    order.id, order.payment_reference, order.payment_provider, reference)
    return "already_paid"  # paying twice changes nothing


def _refund(session: Session, order: Order, reason: str) -> Refund:
    """Give the payment back through the provider and reverse its split (every refund
    comes through here)."""
    provider = payments.provider(order.payment_provider)
    now = utcnow()
    refund = Refund(order_id=order.id, amount_fen=order.amount_fen, provider=provider.name,
                    provider_reference=provider.refund(order.id, order.amount_fen), reason=reason[:200],
                    created_at=now)
    session.add(refund)
    settlement.reverse_capture(session, order, now)
    return refund


def _cancel(session: Session, order: Order, reason: str) -> None:
    project = lock_project(session, order.project_id)
    project.reserved_kg -= order.quantity_kg
    order.status = states.CANCELLED
    order.cancelled_at = utcnow()
    order.failure_reason = reason


def expire_unpaid(session: Session, now: datetime | None = None, limit: int = 500) -> int:
    """Cancel unpaid orders past their payment window, releasing their reservation."""
    now = now or utcnow()
    query = (select(Order.id).where(Order.status == states.PENDING_PAYMENT, Order.expires_at <= now)
             .order_by(Order.expires_at).limit(limit))
    expired = 0
    for order_id in session.scalars(query).all():
        order = lock_order(session, order_id)
        if order.status == states.PENDING_PAYMENT:
            _cancel(session, order, "payment window expired")
            expired += 1
    return expired


# --- retirement -----------------------------------------------------------------------

def _lock_ledger(session: Session) -> None:
    """Appends to the one global chain must be serial (SQLite: already, by its lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('orders.ledger'))"))


def retire(session: Session, order_id: str) -> bool:
    """Allocate serials, mark ``retired``, append to the ledger and queue the next steps.

    Returns False when there was nothing to do (unknown order, or not ``paid`` any more:
    a duplicate delivery).
    """
    order = lock_order(session, order_id)
    if order is None or order.status != states.PAID:
        return False
    project = lock_project(session, order.project_id)
    cursors = [allocation.BlockCursor(b.id, b.next_serial, b.last)
               for b in session.scalars(_for_update(session, select(SerialBlock)
                                                    .where(SerialBlock.project_id == project.id,
                                                           SerialBlock.next_serial <= SerialBlock.last)
                                                    .order_by(SerialBlock.first)))]
    ranges = allocation.allocate(cursors, order.quantity_kg)
    now = utcnow()
    blocks = {b.id: b for b in project.blocks}
    for r in ranges:
        session.add(Retirement(order_id=order.id, project_id=project.id, block_id=r.block_id,
                               serial_first=r.first, serial_last=r.last, retired_at=now))
        # A merged range can span adjacent blocks: advance every block it covers.
        for block in blocks.values():
            if block.first <= r.last and r.first <= block.last:
                block.next_serial = max(block.next_serial, min(r.last, block.last) + 1)
    project.reserved_kg -= order.quantity_kg
    project.retired_kg += order.quantity_kg
    order.status = states.RETIRED
    order.retired_at = now
    session.flush()
    entry = _append_ledger(session, order, project, ranges, now)
    _enqueue_followups(session, order, project, entry)
    return True


def serial_ranges(order: Order, project: Project) -> list[str]:
    return [allocation.format_range(project.code, project.vintage, r.serial_first, r.serial_last)
            for r in order.retirements]


def _append_ledger(session: Session, order: Order, project: Project, ranges, now) -> LedgerEntry:
    _lock_ledger(session)
    head = session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq.desc()).limit(1)).first()
    prev_hash = head.hash if head else ledger.GENESIS_HASH
    body = {
        "order_id": order.id,
        "project_id": project.id,
        "project_code": project.code,
        "registry": project.registry_name,
        "vintage": project.vintage,
        "quantity_kg": order.quantity_kg,
        "serial_ranges": [allocation.format_range(project.code, project.vintage, r.first, r.last)
                          for r in ranges],
        "retired_at": now.isoformat(),
    }
    entry = LedgerEntry(seq=(head.seq + 1) if head else 1, order_id=order.id, project_id=project.id,
                        body=body, prev_hash=prev_hash, hash=ledger.entry_hash(prev_hash, body),
                        created_at=now)
    session.add(entry)
    return entry


def _enqueue_followups(session: Session, order: Order, project: Project, entry: LedgerEntry | None) -> None:
    """SPEC §3 step 3: the certificate and the ranking, through the outbox."""
    session.flush()
    ranges = serial_ranges(order, project)
    issued_at = as_utc(order.retired_at).isoformat()
    enqueue(session, OutboxMessage, "certificates.render", {
        "order_id": order.id,
        "holder": order.display_name,
        "organization": order.organization,
        "quantity_kg": order.quantity_kg,
        "project": {"id": project.id, "code": project.code, "name": project.name,
                    "name_en": project.name_en, "registry": project.registry_name,
                    "vintage": project.vintage},
        "serial_range": ", ".join(ranges),
        "scene": {"slug": order.scene_slug, "name": order.scene_name} if order.scene_slug else None,
        "issued_at": issued_at,
        "ledger_hash": entry.hash if entry else None,
    })
    enqueue(session, OutboxMessage, "ranking.record", {
        "order_id": order.id,
        "participant_id": order.participant_id,
        "display_name": order.display_name,
        "organization": order.organization,
        "scene": order.scene_slug,
        "quantity_kg": order.quantity_kg,
        "occurred_at": issued_at,
        "mask_name": order.mask_name,
    })


def fail_retirement(session: Session, order_id: str, reason: str) -> bool:
    """Retirement failed for good: release the reservation and refund the payment."""
    order = lock_order(session, order_id)
    if order is None or order.status != states.PAID:
        return False
    project = lock_project(session, order.project_id)
    project.reserved_kg -= order.quantity_kg
    order.status = states.FAILED
    order.failure_reason = reason[:200]
    _refund(session, order, reason)
    return True


# --- completion -----------------------------------------------------------------------

def complete(session: Session, payload: dict) -> bool:
    """SPEC §3 step 4: the certificate exists; the order is ``completed``."""
    order = lock_order(session, payload["order_id"])
    if order is None:
        log.warning("certificate issued for unknown order %s", payload["order_id"])
        return False
    if order.status != states.RETIRED:
        return False  # completed already (duplicate) or not retired: nothing to do
    order.status = states.COMPLETED
    order.completed_at = utcnow()
    order.certificate_id = payload["certificate_id"]
    order.certificate_verify_code = payload.get("verify_code")
    order.certificate_pdf_url = payload.get("pdf_url")
    order.certificate_verify_url = payload.get("verify_url")
    webhooks.emit(session, wh.ORDER_COMPLETED, lambda: order_view(session, order), scene=order.scene_slug)
    webhooks.emit(session, wh.CERTIFICATE_ISSUED, lambda: _certificate_event(order, order_view(session, order)),
                  scene=order.scene_slug)
    return True


def _certificate_event(order: Order, view: dict) -> dict:
    return {"id": order.certificate_id, "order_id": order.id, "verify_url": order.certificate_verify_url,
            "pdf_url": order.certificate_pdf_url, "holder": order.display_name, "organization": order.organization,
            "quantity_kg": order.quantity_kg, "project": view["project"], "scene": view["scene"],
            "serial_range": (view["retirement"] or {}).get("serial_range"),
            "issued_at": (view["retirement"] or {}).get("retired_at"),
            "revoked_at": iso(order.certificate_revoked_at), "revocation_reason": order.revocation_reason}


def revoke_certificate(session: Session, *, order_id: str, certificate_id: str, reason: str,
                       refund: bool) -> str:
    """The certificates service revoked the order's certificate: mark the order, announce
    ``certificate.revoked`` and, when asked, refund the payment (which reverses its
    split). The kilograms stay retired: retired serials are never sold again.

    Returns what was done: ``revoked``, ``refunded`` (revoked and refunded now),
    ``already_revoked`` or ``ignored`` (unknown order, another certificate, no retirement).
    """
    order = lock_order(session, order_id)
    if order is None or order.status not in (states.RETIRED, states.COMPLETED):
        log.warning("certificate %s revoked for order %s, which is %s", certificate_id, order_id,
                    order.status if order else "unknown")
        return "ignored"
    if order.certificate_id not in (None, certificate_id):
        log.warning("certificate %s revoked, but order %s holds certificate %s", certificate_id, order.id,
                    order.certificate_id)
        return "ignored"
    action = "already_revoked"
    first_time = order.certificate_revoked_at is None
    if first_time:
        order.certificate_revoked_at = utcnow()
        order.revocation_reason = reason[:500]
        action = "revoked"
    already_refunded = session.scalars(select(Refund).where(Refund.order_id == order.id)).first() is not None
    if refund and not already_refunded:
        _refund(session, order, f"certificate revoked: {reason}")
        session.flush()
        action = "refunded"
    if first_time:
        def revoked() -> dict:
            view = order_view(session, order)
            return {**_certificate_event(order, view), "id": certificate_id, "refund": view["refund"],
                    "order": view}
        webhooks.emit(session, wh.CERTIFICATE_REVOKED, revoked, scene=order.scene_slug)
    return action


# --- repair ---------------------------------------------------------------------------

def resend_stuck(session: Session, older_than: timedelta, limit: int = 200) -> int:
    """Re-send the next step of orders stuck in ``paid`` or ``retired`` (receivers are idempotent)."""
    cutoff = utcnow() - older_than
    resent = 0
    stuck_paid = select(Order).where(Order.status == states.PAID, Order.paid_at <= cutoff).limit(limit)
    for order in session.scalars(stuck_paid).all():
        enqueue(session, OutboxMessage, "orders.retire_credits", {"order_id": order.id})
        resent += 1
    stuck_retired = select(Order).where(Order.status == states.RETIRED, Order.retired_at <= cutoff).limit(limit)
    for order in session.scalars(stuck_retired).all():
        entry = session.scalars(select(LedgerEntry).where(LedgerEntry.order_id == order.id)).first()
        _enqueue_followups(session, order, order.project, entry)
        resent += 1
    return resent


# --- reading --------------------------------------------------------------------------

def order_view(session: Session, order: Order, ledger_hashes: dict[str, str] | None = None) -> dict:
    """The public order; ``ledger_hashes`` (order id → hash) saves a query per order in lists."""
    project = order.project
    retirement = None
    if order.retirements:
        ranges = serial_ranges(order, project)
        if ledger_hashes is None:
            ledger_hashes = dict(session.execute(select(LedgerEntry.order_id, LedgerEntry.hash)
                                                 .where(LedgerEntry.order_id == order.id)).all())
        retirement = {
            "serial_range": ", ".join(ranges),
            "serial_ranges": ranges,
            "serial_first": order.retirements[0].serial_first,
            "serial_last": order.retirements[-1].serial_last,
            "retired_at": as_utc(order.retired_at).isoformat(),
            "ledger_hash": ledger_hashes.get(order.id),
        }
    certificate = None
    if order.certificate_id:
        certificate = {"id": order.certificate_id, "pdf_url": order.certificate_pdf_url,
                       "verify_url": order.certificate_verify_url,
                       "revoked_at": iso(order.certificate_revoked_at)}
    refund = session.scalars(select(Refund).where(Refund.order_id == order.id)).first() \
        if order.status in (states.FAILED, states.CANCELLED) or order.certificate_revoked_at else None
    return {
        "id": order.id, "status": order.status, "quantity_kg": order.quantity_kg,
        "amount_fen": order.amount_fen, "currency": order.currency,
        "project": {"id": project.id, "code": project.code, "name": project.name,
                    "name_en": project.name_en, "registry": project.registry_name, "vintage": project.vintage},
        "participant": {"id": order.participant_id, "display_name": order.display_name,
                        "organization": order.organization, "mask_name": order.mask_name},
        "scene": {"slug": order.scene_slug, "name": order.scene_name} if order.scene_slug else None,
        "payment": {"provider": order.payment_provider,
                    "checkout_url": payments.provider(order.payment_provider).checkout_url(order.id)},
        "created_at": as_utc(order.created_at).isoformat(),
        "expires_at": as_utc(order.expires_at).isoformat(),
        "paid_at": as_utc(order.paid_at).isoformat() if order.paid_at else None,
        "completed_at": as_utc(order.completed_at).isoformat() if order.completed_at else None,
        "failure_reason": order.failure_reason,
        "retirement": retirement,
        "certificate": certificate,
        "refund": {"amount_fen": refund.amount_fen, "reason": refund.reason,
                   "refunded_at": iso(refund.created_at)} if refund else None,
    }


def project_view(project: Project, money: settlement.ProjectMoney | None = None) -> dict:
    """The public project with its ledger summary: kilograms retired, the owners' share
    of what buyers paid and what has been transferred to them. ``money`` saves a query
    per project in lists."""
    if money is None:
        money = settlement.project_money(object_session(project), [project.id]).get(project.id)
    money = money or settlement.ProjectMoney()
    return {
        "id": project.id, "code": project.code, "name": project.name, "name_en": project.name_en,
        "type": project.type, "location": project.location, "registry": project.registry_name,
        "vintage": project.vintage, "price_fen_per_tonne": project.price_fen_per_tonne,
        "issued_kg": project.issued_kg, "reserved_kg": project.reserved_kg,
        "retired_kg": project.retired_kg, "available_kg": project.available_kg,
        "owner": {"id": project.owner.id, "name": project.owner.name} if project.owner else None,
        "fee_bps": project.fee_bps, "fee_min_fen": project.fee_min_fen,
        "low_inventory_threshold_kg": low_inventory_threshold(project),
        "owner_net_fen": money.owner_net_fen, "paid_to_owner_fen": money.paid_to_owner_fen,
    }


def project_views(session: Session, projects: list[Project]) -> list[dict]:
    money = settlement.project_money(session, [p.id for p in projects])
    return [project_view(p, money.get(p.id, settlement.ProjectMoney())) for p in projects]


def find_project(session: Session, ref: str) -> Project | None:
    """A project by id or by code."""
    return session.scalars(select(Project).where(or_(Project.id == ref, Project.code == ref))).first()


def list_orders(session: Session, *, status: str | None = None, project: str | None = None,
                scene: str | None = None, limit: int = 50, after: str | None = None) -> dict:
    """Orders oldest first, ``limit`` a page; ``after`` is the last id of the previous page."""
    query = (select(Order).options(selectinload(Order.project), selectinload(Order.retirements))
             .order_by(Order.created_at, Order.id))
    if status:
        query = query.where(Order.status == status)
    if project:
        found = find_project(session, project)
        if found is None:
            raise NotFound("project", project)
        query = query.where(Order.project_id == found.id)
    if scene:
        query = query.where(Order.scene_slug == scene)
    if after:
        anchor = session.get(Order, after)
        if anchor is None:
            raise ApiError(422, "validation_error", "some fields are invalid", {"after": [f"unknown order {after}"]})
        query = query.where(or_(Order.created_at > anchor.created_at,
                                and_(Order.created_at == anchor.created_at, Order.id > anchor.id)))
    rows = session.scalars(query.limit(limit + 1)).all()
    page = rows[:limit]
    hashes = dict(session.execute(select(LedgerEntry.order_id, LedgerEntry.hash)
                                  .where(LedgerEntry.order_id.in_([o.id for o in page]))).all())
    return {"items": [order_view(session, o, hashes) for o in page],
            "next_after": page[-1].id if len(rows) > limit else None}


def ledger_entries(session: Session, *, project: str | None = None, after: int = 0,
                   limit: int | None = None) -> list[LedgerEntry]:
    """Entries in chain order after ``seq`` ``after``; all of them when ``limit`` is None."""
    query = select(LedgerEntry).where(LedgerEntry.seq > after).order_by(LedgerEntry.seq)
    if project:
        found = find_project(session, project)
        if found is None:
            raise NotFound("project", project)
        query = query.where(LedgerEntry.project_id == found.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def ledger_view(entry: LedgerEntry) -> dict:
    return {"seq": entry.seq, **entry.body, "prev_hash": entry.prev_hash, "hash": entry.hash}


def add_project(session: Session, *, code: str, name: str, name_en: str, type: str, location: str,
                registry: str, vintage: int, price_fen_per_tonne: int, owner_id: str | None = None,
                fee_bps: int = 0, fee_min_fen: int = 0, low_inventory_threshold_kg: int | None = None) -> Project:
    if session.scalars(select(Project).where(Project.code == code)).first():
        raise ApiError(409, "project_code_taken", f"a project with code {code} exists")
    project = Project(id=new_id("prj"), code=code, name=name, name_en=name_en, type=type,
                      location=location, registry_name=registry, vintage=vintage,
                      price_fen_per_tonne=price_fen_per_tonne, issued_kg=0, reserved_kg=0, retired_kg=0,
                      fee_bps=fee_bps, fee_min_fen=fee_min_fen, low_inventory_threshold_kg=low_inventory_threshold_kg)
    session.add(project)
    settlement.attach_owner(session, project, owner_id)
    session.flush()
    return project


def update_project(session: Session, project_id: str, changes: dict) -> Project:
    """Change the price, the owner, the fee rule, the low-inventory threshold or the
    descriptive fields. Orders keep the amount they were created with and payments the
    split they were booked with, so a new price or fee applies to what comes next."""
    project = lock_project(session, project_id)
    if project is None:
        raise NotFound("project", project_id)
    for field in ("name", "name_en", "type", "location", "price_fen_per_tonne", "fee_bps", "fee_min_fen",
                  "low_inventory_threshold_kg"):
        if field in changes:
            setattr(project, field, changes[field])
    if "owner_id" in changes:
        settlement.attach_owner(session, project, changes["owner_id"])
    session.flush()
    return project


def record_issuance(session: Session, project_id: str, first: int, last: int) -> SerialBlock:
    """An operator records serials the registry issued; the project lock keeps two
    overlapping issuances from both passing the overlap check."""
    project = lock_project(session, project_id)
    if project is None:
        raise NotFound("project", project_id)
    return issue_block(session, project, first, last)


def issuance_view(block: SerialBlock) -> dict:
    return {"id": block.id, "project_id": block.project_id, "first": block.first, "last": block.last,
            "quantity_kg": block.last - block.first + 1, "issued_at": as_utc(block.issued_at).isoformat(),
            "project": project_view(block.project)}


def issue_block(session: Session, project: Project, first: int, last: int) -> SerialBlock:
    """Record an issuance (serials first..last); blocks of a project never overlap."""
    if first < 1 or last < first:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {"last": ["must be ≥ first, and first ≥ 1"]})
    overlapping = session.scalars(select(func.count()).select_from(SerialBlock).where(
        SerialBlock.project_id == project.id, SerialBlock.first <= last, SerialBlock.last >= first)).one()
    if overlapping:
        raise ApiError(409, "serials_overlap", f"serials {first}-{last} overlap an issued block")
    block = SerialBlock(project_id=project.id, first=first, last=last, next_serial=first)
    session.add(block)
    project.issued_kg += last - first + 1
    session.flush()
    return block
