"""What an order looks like from outside: the order view, its page of a list, the 201 body."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from diandian_common.errors import ApiError, NotFound
from diandian_common.timestamps import as_utc, iso

from ..catalogue.service import find_project
from ..ledger import registry
from ..ledger.domain import allocation
from ..models import LedgerEntry, Order, Project, Refund
from ..payments import providers
from .domain import lifecycle


def serial_ranges(order: Order, project: Project) -> list[str]:
    return [allocation.format_range(project.code, project.vintage, r.serial_first, r.serial_last)
            for r in order.retirements]


def participant_view(order: Order) -> dict:
    return {"id": order.participant_id, "display_name": order.display_name,
            "organization": order.organization, "mask_name": order.mask_name}


def payment_options() -> list[dict]:
    """The providers a guest may choose at checkout: enabled, configured, and their methods."""
    options = []
    for name in providers.enabled():
        candidate = providers.PROVIDERS.get(name)
        if isinstance(candidate, providers.CheckoutProvider) and candidate.takes_webhooks():
            options.append({"provider": candidate.name, "methods": sorted(candidate.methods)})
    return options


def created_view(order: Order, checkout_url: str) -> dict:
    return {
        "id": order.id, "status": order.status, "project_id": order.project_id,
        "quantity_kg": order.quantity_kg, "amount_fen": order.amount_fen, "currency": order.currency,
        "expires_at": order.expires_at.isoformat(),
        "participant": participant_view(order),
        "payment": {"provider": order.payment_provider, "checkout_url": checkout_url},
    }


# What only an order's participant and operators see: who it is, and the links that lead
# to them (the certificate names the holder; paying is theirs). Order ids are public on
# the ledger, so everything else of an order is public anyway.
PERSONAL_FIELDS = ("participant", "certificate", "payment", "refund")


def order_view(session: Session, order: Order, ledger_hashes: dict[str, str] | None = None,
               anchors: dict[str, dict | None] | None = None) -> dict:
    """The whole order (its participant's view); ``ledger_hashes`` (order id → hash) and
    ``anchors`` (order id → registry.coverage_by_order) save queries per order in lists."""
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
            "registry": (registry.coverage_by_order(session, order.retirements) if anchors is None
                         else anchors).get(order.id),
        }
    certificate = None
    if order.certificate_id:
        certificate = {"id": order.certificate_id, "pdf_url": order.certificate_pdf_url,
                       "verify_url": order.certificate_verify_url,
                       "revoked_at": iso(order.certificate_revoked_at)}
    refund = session.scalars(select(Refund).where(Refund.order_id == order.id)).first() \
        if order.status in (lifecycle.FAILED, lifecycle.CANCELLED) or order.certificate_revoked_at else None
    return {
        "id": order.id, "status": order.status, "quantity_kg": order.quantity_kg,
        "amount_fen": order.amount_fen, "currency": order.currency,
        "project": {"id": project.id, "code": project.code, "name": project.name,
                    "name_en": project.name_en, "registry": project.registry_name, "vintage": project.vintage},
        "participant": participant_view(order),
        "scene": {"slug": order.scene_slug, "name": order.scene_name} if order.scene_slug else None,
        "payment": {"provider": order.payment_provider,
                    "checkout_url": providers.provider(order.payment_provider).checkout_url(order.id),
                    "options": payment_options()},
        "created_at": as_utc(order.created_at).isoformat(),
        "expires_at": as_utc(order.expires_at).isoformat(),
        "paid_at": iso(order.paid_at),
        "completed_at": iso(order.completed_at),
        "failure_reason": order.failure_reason,
        "retirement": retirement,
        "certificate": certificate,
        "refund": {"amount_fen": refund.amount_fen, "reason": refund.reason,
                   "refunded_at": iso(refund.created_at), "status": refund.status,
                   "confirmed_at": iso(refund.confirmed_at)} if refund else None,
    }


def get_order_view(session: Session, order_id: str, may_see: Callable[[Order], bool]) -> dict:
    """The order as ``may_see`` allows: whole, or without its ``PERSONAL_FIELDS``."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("order", order_id)
    view = order_view(session, order)
    if not may_see(order):
        for field in PERSONAL_FIELDS:
            del view[field]
    return view


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
    items, last = _page(session, query, limit)
    return {"items": items, "next_after": last}


def participant_orders(session: Session, participant_id: str, *, limit: int = 20,
                       before: str | None = None) -> dict:
    """``participant_id``'s orders newest first, ``limit`` a page; ``before`` is the last id of
    the previous page, and must be one of theirs (another's id reveals nothing of it)."""
    query = (select(Order).options(selectinload(Order.project), selectinload(Order.retirements))
             .where(Order.participant_id == participant_id)
             .order_by(Order.created_at.desc(), Order.id.desc()))
    if before:
        anchor = session.get(Order, before)
        if anchor is None or anchor.participant_id != participant_id:
            raise ApiError(422, "validation_error", "some fields are invalid",
                           {"before": [f"not one of your orders: {before}"]})
        query = query.where(or_(Order.created_at < anchor.created_at,
                                and_(Order.created_at == anchor.created_at, Order.id < anchor.id)))
    items, last = _page(session, query, limit)
    return {"items": items, "next_before": last}


def _page(session: Session, query, limit: int) -> tuple[list[dict], str | None]:
    """One page of ``query``'s orders as views (their ledger hashes and registry records read
    for the page at once), and the id to continue from when there are more."""
    rows = session.scalars(query.limit(limit + 1)).all()
    page = rows[:limit]
    hashes = dict(session.execute(select(LedgerEntry.order_id, LedgerEntry.hash)
                                  .where(LedgerEntry.order_id.in_([o.id for o in page]))).all())
    anchors = registry.coverage_by_order(session, [r for o in page for r in o.retirements])
    return [order_view(session, o, hashes, anchors) for o in page], page[-1].id if len(rows) > limit else None
