"""Placing orders, their payment window and their end: the ordering service functions.

Every function takes the caller's unit of work (or its session, for the helpers other
packages share) and checks the order's status first, so running it twice has one effect.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from diandian_common import config
from diandian_common.errors import ApiError
from diandian_common.timestamps import as_utc, utcnow
from diandian_common.uow import UnitOfWork

from ..catalogue.service import announce_low_inventory, low_inventory_threshold
from ..models import IdempotencyRecord, Order, PaymentCheckout
from ..payments import providers, refunds
from ..payments.domain import reconcile as reconcile_rules
from ..payments.port import reconcile_timing
from ..records import for_update, lock_name, lock_order, lock_project, new_id
from ..webhooks import service as webhooks
from ..webhooks.domain import rules as webhook_rules
from . import lifecycle as moves
from . import resends
from .domain import fairness, lifecycle, pricing
from .domain import idempotency as idempotency_rules
from .views import created_view, order_view

log = logging.getLogger(__name__)

MIN_IDEMPOTENCY_TTL_HOURS = 24  # clients retrying the next day must still get their order back


def idempotency_ttl() -> timedelta:
    return timedelta(hours=max(MIN_IDEMPOTENCY_TTL_HOURS, config.env_int("IDEMPOTENCY_TTL_HOURS", 48)))


def fairness_limits() -> fairness.Limits:
    """The fair-inventory limits (services/orders/README.md, "Fair inventory")."""
    guest_order_kg = config.env_int("ORDER_MAX_KG_GUEST", 20_000)
    return fairness.Limits(
        guest_order_kg=guest_order_kg,
        unpaid_per_participant_kg=config.env_int("ORDER_MAX_UNPAID_KG_PER_PARTICIPANT", 2 * guest_order_kg),
        unpaid_per_address_kg=config.env_int("ORDER_MAX_UNPAID_KG_PER_ADDRESS", 10 * guest_order_kg),
        payment_window=timedelta(minutes=config.env_int("ORDER_PAYMENT_TIMEOUT_MINUTES", 30)),
        low_inventory_payment_window=timedelta(
            minutes=config.env_int("ORDER_PAYMENT_TIMEOUT_LOW_INVENTORY_MINUTES", 10)),
    )


def unpaid_kg(session: Session, *conditions) -> int:
    """Kilograms held by unpaid orders matching ``conditions``."""
    return session.scalar(select(func.coalesce(func.sum(Order.quantity_kg), 0)).where(
        Order.status == lifecycle.PENDING_PAYMENT, *conditions)) or 0


# --- placing an order -----------------------------------------------------------------

def find_idempotent(session: Session, key: str) -> IdempotencyRecord | None:
    record = session.get(IdempotencyRecord, key)
    if record is not None and as_utc(record.expires_at) < utcnow():
        session.delete(record)
        session.flush()
        return None
    return record


def create_order(uow: UnitOfWork, *, key: str, fingerprint: str, project_id: str, requested_kg,
                 participant: dict, scene: dict | None, estimate_id: str | None,
                 by_operator: bool = False, address_hash: str | None = None) -> tuple[dict, int]:
    """Reserve the kilograms and create a ``pending_payment`` order; returns its body and 201.

    An order for an estimate the participant already has a payable pending order of, asking
    the same, is that order (200): see ``pending_of_estimate``.
    ``by_operator``: an operator key placed it (no per-order guest cap); ``address_hash``:
    the keyed hash of the guest's address, for the per-address cap on unpaid kilograms."""
    session = uow.session
    # What the participant and the address hold unpaid is summed across projects, so their
    # orders are counted in turn; these locks come before the project's, in every order.
    lock_name(session, "unpaid-of-participant", participant["id"])
    if address_hash:
        lock_name(session, "unpaid-of-address", address_hash)
    # A pending order of the same estimate on another project may be replaced (cancelled,
    # releasing its kilograms: pending_of_estimate), so its project is locked too; several
    # projects in id order, so no two orders wait on each other.
    projects = {project_id}
    if estimate_id:
        projects.update(session.scalars(select(Order.project_id).where(
            Order.participant_id == participant["id"], Order.estimate_id == estimate_id,
            Order.status == lifecycle.PENDING_PAYMENT)))
    locked = {pid: lock_project(session, pid) for pid in sorted(projects)}
    project = locked[project_id]
    if project is None:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {"project_id": [f"unknown project {project_id}"]})
    try:
        quantity = pricing.round_up_kg(requested_kg)
    except ValueError:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {"quantity_kg": ["must be greater than 0"]}) from None
    if estimate_id:
        pending = pending_of_estimate(session, participant, estimate_id, project.id, quantity)
        if pending is not None:
            checkout_url = providers.provider(pending.payment_provider).checkout_url(pending.id)
            body = created_view(pending, checkout_url)
            session.add(IdempotencyRecord(key=key, request_hash=fingerprint, order_id=pending.id,
                                          response_status=200, response_body=body,
                                          expires_at=utcnow() + idempotency_ttl()))
            return body, 200
    limits = fairness_limits()
    refusal = fairness.check_order(
        limits, quantity_kg=quantity, by_operator=by_operator,
        unpaid_of_participant_kg=unpaid_kg(session, Order.participant_id == participant["id"]),
        unpaid_of_address_kg=unpaid_kg(session, Order.address_hash == address_hash) if address_hash else None)
    if refusal is not None:
        raise ApiError(refusal.status, refusal.code, refusal.message,
                       {refusal.field: [refusal.message]} if refusal.field else None)
    if quantity > project.available_kg:
        raise ApiError(409, "insufficient_credits",
                       f"{project.code} has {project.available_kg} kg available, {quantity} kg requested")
    window = fairness.payment_window(limits, available_after_kg=project.available_kg - quantity,
                                     low_threshold_kg=low_inventory_threshold(project))
    provider = providers.for_new_orders()
    order = Order(
        id=new_id("ord"), status=lifecycle.PENDING_PAYMENT, project_id=project.id,
        quantity_kg=quantity, requested_kg=str(requested_kg),
        amount_fen=pricing.amount_fen(quantity, project.price_fen_per_tonne), currency="CNY",
        participant_id=participant["id"], address_hash=address_hash, display_name=participant["display_name"],
        organization=participant.get("organization"),
        mask_name=bool(participant.get("mask_name", False)),
        scene_slug=scene["slug"] if scene else None, scene_name=scene["name"] if scene else None,
        scene_name_en=(scene.get("name_en") or None) if scene else None,
        estimate_id=estimate_id, payment_provider=provider.name,
        created_at=utcnow(), expires_at=utcnow() + window,
    )
    available_before = project.available_kg
    project.reserved_kg += quantity
    session.add(order)
    announce_low_inventory(session, project, available_before)
    body = created_view(order, provider.checkout_url(order.id))
    session.add(IdempotencyRecord(key=key, request_hash=fingerprint, order_id=order.id,
                                  response_status=201, response_body=body,
                                  expires_at=utcnow() + idempotency_ttl()))
    return body, 201


def pending_of_estimate(session: Session, participant: dict, estimate_id: str, project_id: str,
                        quantity_kg: int) -> Order | None:
    """The participant's pending order of this estimate, when a new order asking the same
    should be it (domain/idempotency.same_estimate_decision), its holder's name as now given;
    a pending one asking otherwise is cancelled first, releasing its kilograms, so one
    estimate never holds kilograms twice. The caller holds the participant's lock
    (``unpaid-of-participant``), so two submissions at once find one another's order."""
    now = utcnow()
    found = session.scalars(for_update(session, select(Order).where(
        Order.participant_id == participant["id"], Order.estimate_id == estimate_id,
        Order.status == lifecycle.PENDING_PAYMENT).order_by(Order.created_at))).all()
    reused = None
    for order in found:
        decision = idempotency_rules.same_estimate_decision(
            order.project_id, order.quantity_kg, as_utc(order.expires_at) <= now, project_id, quantity_kg)
        if decision == "reuse" and reused is None:
            reused = order
        else:
            cancel(session, order, "replaced by a new order of the same estimate")
    if reused is not None:
        # Nothing is paid or issued yet: the certificate will carry the name as last given.
        reused.display_name = participant["display_name"]
        reused.organization = participant.get("organization")
        reused.mask_name = bool(participant.get("mask_name", False))
    return reused


def purge_idempotency_keys(uow: UnitOfWork, now: datetime | None = None) -> int:
    """Forget keys past their TTL (a periodic task); returns how many were deleted."""
    result = uow.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= (now or utcnow())))
    return result.rowcount or 0


# --- the payment window ---------------------------------------------------------------

def cancel(session: Session, order: Order, reason: str) -> None:
    """Release the reservation of an unpaid order."""
    project = lock_project(session, order.project_id)
    project.reserved_kg -= order.quantity_kg
    order.cancelled_at = utcnow()
    order.failure_reason = reason
    moves.move(session, order, "cancel")


def expire_unpaid(uow: UnitOfWork, now: datetime | None = None, limit: int = 500) -> int:
    """Cancel unpaid orders past their payment window, releasing their reservation.

    An order with a trade at a provider that can close it (WeChat Pay, Alipay) is left to
    the reconciliation, which closes the trade first (payments/reconcile.py), until
    ``PAYMENT_CLOSE_GIVE_UP_SECONDS`` past its window: then it is cancelled here anyway."""
    session = uow.session
    now = now or utcnow()
    timing = reconcile_timing()
    closable = select(PaymentCheckout.order_id).where(
        PaymentCheckout.provider.in_(sorted(providers.trade_providers())))
    query = (select(Order.id).where(Order.status == lifecycle.PENDING_PAYMENT, Order.expires_at <= now,
                                    or_(Order.id.not_in(closable),
                                        Order.expires_at <= now - timing.give_up_after))
             .order_by(Order.expires_at).limit(limit))
    expired = 0
    for order_id in session.scalars(query).all():
        order = lock_order(session, order_id)
        has_trade = session.scalars(closable.where(PaymentCheckout.order_id == order_id)).first() is not None
        if order.status == lifecycle.PENDING_PAYMENT and reconcile_rules.expiry_cancels(
                has_trade, as_utc(order.expires_at), now, timing):
            if has_trade:
                log.warning("order %s cancelled with its trade not closed at the provider: a payment "
                            "that still lands is refunded", order.id, extra={"order_id": order.id})
            cancel(session, order, "payment window expired")
            expired += 1
    return expired


# --- the end: the certificate, its revocation -----------------------------------------

def complete(uow: UnitOfWork, *, order_id: str, certificate_id: str, verify_code: str | None = None,
             pdf_url: str | None = None, verify_url: str | None = None) -> bool:
    """The certificate exists; the order is ``completed``."""
    order = lock_order(uow.session, order_id)
    if order is None:
        log.warning("certificate issued for unknown order %s", order_id)
        return False
    if not lifecycle.can("complete", order.status):
        return False  # completed already (duplicate) or not retired: nothing to do
    order.completed_at = utcnow()
    order.certificate_id = certificate_id
    order.certificate_verify_code = verify_code
    order.certificate_pdf_url = pdf_url
    order.certificate_verify_url = verify_url
    moves.move(uow.session, order, "complete")
    return True


def revoke_certificate(uow: UnitOfWork, *, order_id: str, certificate_id: str, reason: str,
                       refund: bool) -> str:
    """The certificates service revoked the order's certificate: mark the order, announce
    ``certificate.revoked`` and, when asked, refund the payment (which reverses its
    split). The kilograms stay retired: retired serials are never sold again.

    Returns what was done: ``revoked``, ``refunded`` (revoked and refunded now),
    ``already_revoked`` or ``ignored`` (unknown order, another certificate, no retirement).
    """
    session = uow.session
    order = lock_order(session, order_id)
    if order is None or order.status not in (lifecycle.RETIRED, lifecycle.COMPLETED):
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
    if refund and refunds.existing(session, order.id) is None:
        moves.move(session, order, "refund", reason=f"certificate revoked: {reason}")
        session.flush()
        action = "refunded"
    if first_time:
        def revoked() -> dict:
            view = order_view(session, order)
            return {**moves.certificate_event(order, view), "id": certificate_id, "refund": view["refund"],
                    "order": view}
        webhooks.emit(session, webhook_rules.CERTIFICATE_REVOKED, revoked, scene=order.scene_slug)
    return action


# --- repair ---------------------------------------------------------------------------
#
# Two periodic tasks send again what an order is waiting for; a message lost anywhere (an
# unsynced AOF tail, a failover to a lagging replica) is sent again, and every consumer is
# idempotent, so it is applied once:
# - resend_stuck: orders whose status stands still, waiting for the answer that moves them
#   on: `paid` for its retirement (orders.retire_credits), `retired` for its certificate
#   (certificates.render, answered by orders.certificate_issued);
# - audit_pipeline: what no status shows, ranking's acknowledgement of the order's
#   contribution (ranking.record, answered by orders.contribution_recorded).
# Both go through resends.py, so a re-sent message waits for the retries of the one before.

STUCK_STEP = {lifecycle.PAID: (lifecycle.RETIREMENT_REQUESTED, "orders.retire_credits", Order.paid_at),
              lifecycle.RETIRED: (lifecycle.CERTIFICATE_REQUESTED, "certificates.render", Order.retired_at)}
RANKED_STATUSES = (lifecycle.RETIRED, lifecycle.COMPLETED)


def resend_stuck(uow: UnitOfWork, older_than: timedelta, limit: int = 200,
                 now: datetime | None = None) -> dict[str, int]:
    """Re-send the step of orders stuck in ``paid`` or ``retired`` for longer than
    ``older_than``, unless it was re-sent too recently; the messages sent, by task name."""
    session = uow.session
    now = now or utcnow()
    resent = {}
    for status, (event, task_name, since) in STUCK_STEP.items():
        stuck = resends.due(select(Order).where(Order.status == status, since <= now - older_than),
                            task_name, now).order_by(since).limit(limit)
        orders = session.scalars(stuck).all()
        for order in orders:
            moves.announce(session, order, (event,))
            resends.note(session, order, task_name, older_than, now)
        resent[task_name] = len(orders)
    return resent


@dataclass(frozen=True)
class AuditReport:
    unacknowledged: int   # orders retired over the grace ago whose contribution ranking never confirmed
    resent: int           # of them, those whose ranking.record was sent again now

    @property
    def waiting(self) -> int:
        """Sent again recently (or beyond this pass's batch): their turn comes later."""
        return self.unacknowledged - self.resent


def audit_pipeline(uow: UnitOfWork, grace: timedelta, limit: int = 500,
                   now: datetime | None = None) -> AuditReport:
    """Send ``ranking.record`` again for retired orders whose contribution ranking has not
    acknowledged within ``grace``, at most ``limit`` per pass (orders retired before the
    acknowledgement existed are asked about in batches, not all at once). An order whose
    certificate was revoked is left alone: its kilograms must not reach the boards now."""
    session = uow.session
    now = now or utcnow()
    unacknowledged = select(Order).where(Order.status.in_(RANKED_STATUSES), Order.ranked_at.is_(None),
                                         Order.certificate_revoked_at.is_(None),
                                         Order.retired_at <= now - grace)
    found = session.scalar(select(func.count()).select_from(unacknowledged.subquery())) or 0
    orders = session.scalars(resends.due(unacknowledged, "ranking.record", now)
                             .order_by(Order.retired_at).limit(limit)).all()
    for order in orders:
        moves.announce(session, order, (lifecycle.CONTRIBUTION_REQUESTED,))
        resends.note(session, order, "ranking.record", grace, now)
    return AuditReport(unacknowledged=found, resent=len(orders))


def contribution_recorded(uow: UnitOfWork, order_id: str) -> bool:
    """Ranking holds the order's contribution; whether this is the first time it said so."""
    acknowledged = uow.session.execute(update(Order).where(Order.id == order_id, Order.ranked_at.is_(None))
                                       .values(ranked_at=utcnow()))
    if acknowledged.rowcount:
        return True
    if uow.session.get(Order, order_id) is None:
        log.warning("ranking acknowledged the contribution of unknown order %s", order_id)
    return False
