"""The reconciliation (``ranking.reconcile``): Redis repaired from the database.

First the sweep re-applies recent rows whose exactly-once marker disagrees with the
database (a Redis write that failed after the commit); then, under the rebuild lock, every
live board's member count and grams are compared with the database, and the boards are
rebuilt (:func:`ranking.rebuild.rebuild_locked`) when any differ.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterator

import redis
from sqlalchemy import ColumnElement, and_, or_, select

from . import store
from .domain.boards import BOARD_PREFIX, MARKERS_KEY, Board
from .queries import NOT_REVOKED, Row, board_totals, snapshot, stream
from .rebuild import RebuildReport, rebuild_locked
from .service import RebuildInProgress, UnitsOfWork, apply_row

log = logging.getLogger(__name__)

# The reconciliation re-applies rows touched in the last day whose marker disagrees with
# the database, leaving alone rows younger than a minute (their tasks are still running).
RECONCILE_LOOKBACK = timedelta(days=1)
RECONCILE_SETTLE = timedelta(seconds=60)
# More unapplied recent rows than this means the workers lag far behind: comparing
# totals then says nothing useful, so the reconciliation waits for the next round.
MAX_IN_FLIGHT = 5_000


def _touched_since(since: datetime, until: datetime | None = None) -> ColumnElement[bool]:
    def within(column):
        return and_(column >= since, column < until) if until is not None else column >= since
    return or_(within(Row.recorded_at), within(Row.revoked_at))


def _disagreeing(client: redis.Redis, rows) -> Iterator[tuple[str, bool, bytes | None]]:
    """(order id, revoked, marker) of rows whose marker disagrees with the database."""
    rows = list(rows)
    if not rows:
        return
    markers = client.hmget(MARKERS_KEY, [order_id for order_id, _ in rows])
    for (order_id, revoked_at), marker in zip(rows, markers):
        wanted = store.REVOKED if revoked_at is not None else store.RECORDED
        if marker is None or marker.decode() != wanted:
            yield order_id, revoked_at is not None, marker


def sweep(unit_of_work: UnitsOfWork, client: redis.Redis, now: datetime) -> int:
    """Re-apply rows touched in the lookback window (older than the settle time) that Redis
    does not reflect: the repair for a Redis write that failed after the database commit.
    One unit of work finds them, then each row is read and applied like its task would."""
    with unit_of_work() as uow:
        conn = uow.session.connection()
        statement = (select(Row.order_id, Row.revoked_at)
                     .where(_touched_since(now - RECONCILE_LOOKBACK, now - RECONCILE_SETTLE)))
        behind = [order_id for chunk in stream(conn, statement)
                  for order_id, _revoked, _marker in _disagreeing(client, chunk)]
    repaired = 0
    for order_id in behind:
        with unit_of_work() as uow:
            row = uow.session.scalars(select(Row).where(Row.order_id == order_id)).one()
        try:
            apply_row(unit_of_work, client, row, now)
        except RebuildInProgress:
            break
        repaired += 1
    if repaired:
        log.warning("reconciliation re-applied %d contributions Redis had missed", repaired)
    return repaired


def _compare(client: redis.Redis, expected: dict[Board, tuple[int, int]]) -> list[str]:
    """Ids of boards whose (members, grams) in Redis differ from ``expected``."""
    boards = list(expected)
    pipe = client.pipeline(transaction=False)
    for board in boards:
        pipe.zcard(board.key)
        pipe.get(board.total_key)
    replies = pipe.execute()
    differing = [board.id for i, board in enumerate(boards)
                 if (replies[2 * i], int(replies[2 * i + 1] or 0)) != expected[board]]
    known = {board.key for board in boards}
    for key in client.scan_iter(match=BOARD_PREFIX + "*", count=1000):
        if key.decode() not in known and client.zcard(key):
            differing.append(key.decode()[len(BOARD_PREFIX):])
    return differing


@dataclass
class ReconcileReport:
    repaired: int = 0
    checked: int = 0
    differing: list[str] = field(default_factory=list)
    rebuilt: RebuildReport | None = None
    skipped: str | None = None


def reconcile(unit_of_work: UnitsOfWork, client: redis.Redis, now: datetime) -> ReconcileReport:
    """``ranking.reconcile``: repair recent rows Redis missed, then compare every live board's
    member count and grams with the database and rebuild when any differ.

    The comparison runs under the rebuild lock, so Redis holds still; rows touched within
    the settle time whose scripts have not run yet (their marker disagrees) are taken out
    of the expected totals, so an order in flight is not mistaken for damage.

    Takes the unit-of-work factory: the sweep commits row by row, and the comparison's
    snapshot begins only once the lock is held.
    """
    report = ReconcileReport(repaired=sweep(unit_of_work, client, now))
    lock = store.Lock(client)
    try:
        lock.acquire()
    except store.LockHeld:
        report.skipped = "a rebuild is running"
        return report
    try:
        with snapshot(unit_of_work) as conn:
            # Older rows were just swept: one still disagreeing now is damage, not in flight.
            recent = select(Row.order_id, Row.revoked_at).where(_touched_since(now - RECONCILE_SETTLE))
            in_flight = [item for chunk in stream(conn, recent) for item in _disagreeing(client, chunk)]
            if len(in_flight) > MAX_IN_FLIGHT:
                report.skipped = f"{len(in_flight)} contributions are still being applied"
                return report
            not_yet_recorded = [order_id for order_id, revoked, _ in in_flight if not revoked]
            not_yet_revoked = [order_id for order_id, revoked, marker in in_flight
                               if revoked and marker is not None and marker.decode() == store.RECORDED]
            effective = or_(and_(NOT_REVOKED, Row.order_id.not_in(not_yet_recorded)),
                            Row.order_id.in_(not_yet_revoked))
            expected = board_totals(conn, now, effective)
            report.checked = len(expected)
            report.differing = _compare(client, expected)
            if report.differing:
                log.warning("ranking boards differ from the database, rebuilding: %s",
                            ", ".join(report.differing[:20]))
                report.rebuilt = rebuild_locked(conn, client, lock, now)
    finally:
        lock.release()
    return report
