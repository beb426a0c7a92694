"""Registry anchoring (issue 19): operators record the cancellations made at a project's
registry that back the platform's retirements; orders and ledger entries show the records
that cover their serials, and the certificates service is told (``certificates.show_registry``)
for every order a new record covers. Which serials a record covers is ledger.domain.anchoring.

Certificates confirms each notice (``orders.registry_shown``); the pipeline audit sends the
coverage again to orders whose confirmation is behind (:func:`resend_unconfirmed`), so a notice
the broker lost still reaches the certificate."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from diandian_common.contracts import build
from diandian_common.errors import ApiError, NotFound
from diandian_common.outbox import enqueue
from diandian_common.timestamps import as_utc, utcnow
from diandian_common.uow import UnitOfWork

from ..models import (
    AnchoredRange,
    Order,
    OutboxMessage,
    Project,
    RegistryNotification,
    RegistryRetirement,
    Retirement,
)
from ..ordering import resends
from ..records import lock_project, new_id
from .domain import anchoring
from .domain.allocation import format_range

SHOW_REGISTRY_TASK = "certificates.show_registry"


def _retired(session: Session, project_id: str) -> list[tuple[int, int]]:
    return [tuple(row) for row in session.execute(
        select(Retirement.serial_first, Retirement.serial_last).where(Retirement.project_id == project_id))]


def _anchored(session: Session, project_id: str) -> list[tuple[int, int]]:
    return [tuple(row) for row in session.execute(
        select(AnchoredRange.serial_first, AnchoredRange.serial_last)
        .where(AnchoredRange.project_id == project_id))]


def record(uow: UnitOfWork, project_id: str, *, quantity_t: int, registry_serial_first: str,
           registry_serial_last: str, cancellation_id: str, url: str, retired_on: date) -> RegistryRetirement:
    """Record a registry cancellation of ``quantity_t`` tonnes: it covers the project's
    next retired, unanchored serials in serial order. The project lock keeps two records
    from taking the same serials (the ranges' constraint would refuse the second)."""
    session = uow.session
    project = lock_project(session, project_id)
    if project is None:
        raise NotFound("project", project_id)
    taken = session.scalars(select(func.count()).select_from(RegistryRetirement).where(
        RegistryRetirement.project_id == project.id,
        RegistryRetirement.cancellation_id == cancellation_id)).one()
    if taken:
        raise ApiError(409, "cancellation_recorded",
                       f"cancellation {cancellation_id} is already recorded for this project")
    try:
        ranges = anchoring.next_ranges(_retired(session, project.id), _anchored(session, project.id),
                                       quantity_t)
    except anchoring.NotEnoughRetired as short:
        raise ApiError(409, "not_enough_retired",
                       f"{short.requested_kg} kg to anchor, but only {short.unanchored_kg} kg of "
                       "this project's retired serials are not anchored yet") from None
    entry = RegistryRetirement(id=new_id("rgr"), project_id=project.id,
                               quantity_kg=quantity_t * anchoring.KG_PER_TONNE,
                               registry_serial_first=registry_serial_first,
                               registry_serial_last=registry_serial_last,
                               cancellation_id=cancellation_id, url=url, retired_on=retired_on)
    session.add(entry)
    session.flush()
    for first, last in ranges:
        session.add(AnchoredRange(record_id=entry.id, project_id=project.id,
                                  serial_first=first, serial_last=last))
    session.flush()
    session.refresh(entry)
    _tell_certificates(session, project.id, ranges)
    return entry


def covered_orders(session: Session, project_id: str, ranges: list[tuple[int, int]]) -> list[str]:
    """The orders of the project with retired serials inside ``ranges``, oldest serials first."""
    low, high = min(first for first, _ in ranges), max(last for _, last in ranges)
    found = session.execute(
        select(Retirement.order_id, Retirement.serial_first, Retirement.serial_last)
        .where(Retirement.project_id == project_id, Retirement.serial_last >= low,
               Retirement.serial_first <= high)
        .order_by(Retirement.serial_first)).all()
    orders: list[str] = []
    for order_id, first, last in found:
        if order_id not in orders and any(first <= r_last and r_first <= last for r_first, r_last in ranges):
            orders.append(order_id)
    return orders


def _tell_certificates(session: Session, project_id: str, ranges: list[tuple[int, int]]) -> None:
    """In the record's transaction, one ``certificates.show_registry`` per order it covers,
    each with everything that covers the order now (all records, not only the new one): the
    certificates service keeps the message with the most kilograms anchored, so a repeated or
    late message changes nothing."""
    orders = covered_orders(session, project_id, ranges)
    coverage = coverage_of_orders(session, orders)
    now = utcnow()
    for order_id in orders:
        _notify(session, order_id, coverage[order_id], now)


def _notify(session: Session, order_id: str, coverage: dict, now: datetime) -> None:
    """Send the order's coverage to certificates and write down what was sent."""
    enqueue(session, OutboxMessage, SHOW_REGISTRY_TASK,
            build(SHOW_REGISTRY_TASK, order_id=order_id, registry=coverage))
    notification = session.get(RegistryNotification, order_id)
    if notification is None:
        session.add(RegistryNotification(order_id=order_id, anchored_kg=coverage["anchored_kg"], sent_at=now))
    else:
        notification.anchored_kg = max(notification.anchored_kg, coverage["anchored_kg"])
        notification.sent_at = now


def registry_shown(uow: UnitOfWork, order_id: str, anchored_kg: int) -> bool:
    """Certificates holds the order's notice of ``anchored_kg`` (``orders.registry_shown``);
    whether that confirms more than before. Confirmations only grow: a late, smaller one
    changes nothing."""
    notification = uow.session.get(RegistryNotification, order_id, with_for_update=True)
    if notification is None:
        return False   # a notice sent before notifications were kept, or an unknown order
    if notification.shown_kg is not None and notification.shown_kg >= anchored_kg:
        return False
    notification.shown_kg = anchored_kg
    return True


def resend_unconfirmed(uow: UnitOfWork, grace: timedelta, limit: int = 500,
                       now: datetime | None = None) -> tuple[int, int]:
    """Send ``certificates.show_registry`` again, with the order's coverage now, for orders
    whose notice certificates has not confirmed within ``grace`` (at most ``limit``, each
    re-send waiting longer than the last: ordering/resends.py). Returns (unconfirmed, re-sent)."""
    session = uow.session
    now = now or utcnow()
    behind = (select(RegistryNotification.order_id)
              .where(RegistryNotification.sent_at <= now - grace,
                     (RegistryNotification.shown_kg.is_(None))
                     | (RegistryNotification.shown_kg < RegistryNotification.anchored_kg)))
    unconfirmed = session.scalar(select(func.count()).select_from(behind.subquery())) or 0
    if not unconfirmed:
        return 0, 0
    order_ids = list(session.scalars(
        resends.due(behind.join(Order, Order.id == RegistryNotification.order_id), SHOW_REGISTRY_TASK, now)
        .order_by(RegistryNotification.sent_at).limit(limit)))
    coverage = coverage_of_orders(session, order_ids)
    for order_id in order_ids:
        enqueue(session, OutboxMessage, SHOW_REGISTRY_TASK,
                build(SHOW_REGISTRY_TASK, order_id=order_id, registry=coverage[order_id]))
        resends.note(session, session.get(Order, order_id), SHOW_REGISTRY_TASK, grace, now)
    return unconfirmed, len(order_ids)


def project_records(session: Session, project_id: str) -> dict:
    """The project's records in the order they cover its serials, and what is left."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound("project", project_id)
    records = list(session.scalars(select(RegistryRetirement).options(selectinload(RegistryRetirement.ranges))
                                   .where(RegistryRetirement.project_id == project.id)
                                   .order_by(RegistryRetirement.recorded_at, RegistryRetirement.id)))
    anchored = sum(r.quantity_kg for r in records)
    return {"project_id": project.id, "items": [record_view(r, project) for r in records],
            "retired_kg": project.retired_kg, "anchored_kg": anchored,
            "unanchored_kg": anchoring.unanchored_kg(_retired(session, project.id),
                                                     _anchored(session, project.id))}


def record_view(entry: RegistryRetirement, project: Project | None = None) -> dict:
    project = project or entry.project
    return {"id": entry.id, "project_id": entry.project_id,
            "quantity_t": entry.quantity_kg // anchoring.KG_PER_TONNE, "quantity_kg": entry.quantity_kg,
            "registry_serial_first": entry.registry_serial_first,
            "registry_serial_last": entry.registry_serial_last, "cancellation_id": entry.cancellation_id,
            "url": entry.url, "retired_on": entry.retired_on.isoformat(),
            "recorded_at": as_utc(entry.recorded_at).isoformat(),
            "serial_ranges": [format_range(project.code, project.vintage, r.serial_first, r.serial_last)
                              for r in entry.ranges]}


def coverage_by_order(session: Session, retirements: list[Retirement]) -> dict[str, dict | None]:
    """Per order of ``retirements``: ``{anchored_kg, complete, records: [{cancellation_id, url,
    retired_on, anchored_kg}]}`` for the records covering its serials, None when none does."""
    by_order: dict[str, list[Retirement]] = defaultdict(list)
    for r in retirements:
        by_order[r.order_id].append(r)
    views: dict[str, dict | None] = dict.fromkeys(by_order)
    by_project: dict[str, list[Retirement]] = defaultdict(list)
    for r in retirements:
        by_project[r.project_id].append(r)
    for project_id, rows in by_project.items():
        low, high = min(r.serial_first for r in rows), max(r.serial_last for r in rows)
        found = session.execute(
            select(AnchoredRange.record_id, AnchoredRange.serial_first, AnchoredRange.serial_last)
            .where(AnchoredRange.project_id == project_id, AnchoredRange.serial_last >= low,
                   AnchoredRange.serial_first <= high)).all()
        if not found:
            continue
        ranges = [anchoring.AnchoredRange(record_id, first, last) for record_id, first, last in found]
        records = {r.id: r for r in session.scalars(select(RegistryRetirement).where(
            RegistryRetirement.id.in_({record_id for record_id, _, _ in found})))}
        for order_id in {r.order_id for r in rows}:
            own = [(r.serial_first, r.serial_last) for r in by_order[order_id]]
            covered = anchoring.coverage(own, ranges)
            if not covered:
                continue
            total = sum(last - first + 1 for first, last in own)
            anchored = sum(covered.values())
            views[order_id] = {
                "anchored_kg": anchored, "complete": anchored == total,
                "records": [anchor_view(records[record_id], kg) for record_id, kg in covered.items()],
            }
    return views


def anchor_view(entry: RegistryRetirement, anchored_kg: int) -> dict:
    return {"cancellation_id": entry.cancellation_id, "url": entry.url,
            "retired_on": entry.retired_on.isoformat(), "anchored_kg": anchored_kg}


def coverage_of_orders(session: Session, order_ids: list[str]) -> dict[str, dict | None]:
    """``coverage_by_order`` of these orders' retirements (orders without any: absent)."""
    if not order_ids:
        return {}
    return coverage_by_order(session, list(session.scalars(
        select(Retirement).where(Retirement.order_id.in_(order_ids)))))
