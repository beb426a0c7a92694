"""Retirement: serials allocated to a paid order, appended to the hash-chained ledger."""
from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from diandian_common.errors import NotFound
from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork

from ..catalogue.service import find_project
from ..models import LedgerEntry, Order, Project, Retirement, SerialBlock
from ..ordering import lifecycle as moves
from ..ordering.domain import lifecycle
from ..records import for_update, lock_order, lock_project
from .domain import allocation, chain


def _lock_ledger(session: Session) -> None:
    """Appends to the one global chain must be serial (SQLite: already, by its lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('orders.ledger'))"))


def retire(uow: UnitOfWork, order_id: str) -> bool:
    """Allocate serials, append to the ledger, mark ``retired`` and queue the certificate
    and the ranking. Returns False when there was nothing to do (unknown order, or not
    ``paid`` any more: a duplicate delivery)."""
    session = uow.session
    order = lock_order(session, order_id)
    if order is None or not lifecycle.can("retire", order.status):
        return False
    project = lock_project(session, order.project_id)
    cursors = [allocation.BlockCursor(b.id, b.next_serial, b.last)
               for b in session.scalars(for_update(session, select(SerialBlock)
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
    order.retired_at = now
    session.flush()
    _append(session, order, project, ranges, now)
    moves.move(session, order, "retire")
    return True


def _append(session: Session, order: Order, project: Project, ranges, now) -> LedgerEntry:
    _lock_ledger(session)
    head = session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq.desc()).limit(1)).first()
    prev_hash = head.hash if head else chain.GENESIS_HASH
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
                        body=body, prev_hash=prev_hash, hash=chain.entry_hash(prev_hash, body),
                        created_at=now)
    session.add(entry)
    return entry


def fail_retirement(uow: UnitOfWork, order_id: str, reason: str) -> bool:
    """Retirement failed for good: release the reservation and refund the payment."""
    session = uow.session
    order = lock_order(session, order_id)
    if order is None or not lifecycle.can("fail", order.status):
        return False
    project = lock_project(session, order.project_id)
    project.reserved_kg -= order.quantity_kg
    order.failure_reason = reason[:200]
    moves.move(session, order, "fail", reason=reason)
    return True


# --- reading --------------------------------------------------------------------------

def entries(session: Session, *, project: str | None = None, after: int = 0,
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


def entry_view(entry: LedgerEntry) -> dict:
    """The published entry: its hashed body and the chain fields."""
    return {"seq": entry.seq, **entry.body, "prev_hash": entry.prev_hash, "hash": entry.hash}


def registry_anchors(entries_page: list[LedgerEntry], coverage: dict[str, dict | None]) -> dict[str, list]:
    """Order id → the registry records covering its serials, for the page's entries that have
    any. Published beside the entries, never in them: an entry is exactly what was chained, so
    every verifier keeps working when records are added later."""
    anchors = {}
    for entry in entries_page:
        records = (coverage.get(entry.order_id) or {}).get("records", [])
        if records:
            anchors[entry.order_id] = [
                {k: r[k] for k in ("cancellation_id", "url", "retired_on", "anchored_kg")} for r in records]
    return anchors
