"""Boards recomputed from the database: ``flask ranking rebuild``, and the reconciliation's
repair when a board differs.

Why a rebuild is exact even while orders keep arriving: it first takes
``rank:lock:rebuild``; from then on no record/revoke script changes Redis (they answer
BUSY and their tasks retry). It then reads one consistent database snapshot and writes
every board, name and exactly-once marker from it, swapping each key in atomically.
An order committed before the snapshot is on the rebuilt boards and has its marker, so
its pending task becomes a no-op; an order committed after it is on no board and has no
marker, so its task applies it once the lock is gone.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import redis
from sqlalchemy import Connection, func, select

from . import settings, store
from .domain.boards import (KEY_PREFIX, LOCK_KEY, MARKERS_KEY, TEMP_PREFIX, Board, Kind, name_versions_key,
                            names_key)
from .domain.names import mask_name
from .domain.scores import earliness, encode
from .queries import NOT_REVOKED, Row, board_totals, member_column, on_board, snapshot, stream
from .service import UnitsOfWork

log = logging.getLogger(__name__)


def _swap(client: redis.Redis, temp: str, key: str, written: bool) -> None:
    """Put ``temp`` in place of ``key`` atomically (or drop ``key`` when nothing was written)."""
    if written:
        client.rename(temp, key)
    else:
        client.delete(temp, key)


def _write_board(conn: Connection, client: redis.Redis, lock: store.Lock, board: Board) -> int:
    member = member_column(board.kind)
    temp, temp_total = TEMP_PREFIX + board.key, TEMP_PREFIX + board.total_key
    client.delete(temp, temp_total)
    statement = (select(member, func.sum(Row.quantity_g), func.max(Row.occurred_at))
                 .where(*on_board(board), NOT_REVOKED).group_by(member))
    grams_total = members = 0
    for chunk in stream(conn, statement):
        client.zadd(temp, {m: encode(int(grams), earliness(reached)) for m, grams, reached in chunk})
        grams_total += sum(int(grams) for _m, grams, _r in chunk)
        members += len(chunk)
        lock.extend()
    if members:
        pipe = client.pipeline()
        pipe.set(temp_total, grams_total)
        pipe.rename(temp, board.key)
        pipe.rename(temp_total, board.total_key)
        expires_at = board.expires_at(settings.period_grace())
        if expires_at is not None:
            pipe.expireat(board.key, int(expires_at.timestamp()))
            pipe.expireat(board.total_key, int(expires_at.timestamp()))
        pipe.execute()
    return members


def _write_names(conn: Connection, client: redis.Redis, lock: store.Lock, kind: Kind) -> list[str]:
    """Each member's name from its latest contribution (highest id), as the scripts keep it."""
    member = member_column(kind)
    latest = (select(member.label("member"), func.max(Row.id).label("id"))
              .where(member.is_not(None)).group_by(member).subquery())
    statement = (select(member, Row.display_name, Row.mask_name, Row.organization, Row.id)
                 .join(latest, Row.id == latest.c.id))
    keys = [names_key(kind), name_versions_key(kind)]
    temps = [TEMP_PREFIX + k for k in keys]
    client.delete(*temps)
    written = False
    for chunk in stream(conn, statement):
        names, versions = {}, {}
        for m, display_name, masked, organization, row_id in chunk:
            if kind is Kind.ORGANIZATION:
                names[m] = organization
            else:
                names[m] = mask_name(display_name) if masked else display_name
            versions[m] = row_id
        client.hset(temps[0], mapping=names)
        client.hset(temps[1], mapping=versions)
        written = True
        lock.extend()
    for temp, key in zip(temps, keys):
        _swap(client, temp, key, written)
    return keys


def _write_markers(conn: Connection, client: redis.Redis, lock: store.Lock) -> str:
    temp = TEMP_PREFIX + MARKERS_KEY
    client.delete(temp)
    written = False
    for chunk in stream(conn, select(Row.order_id, Row.revoked_at)):
        client.hset(temp, mapping={order_id: store.RECORDED if revoked_at is None else store.REVOKED
                                   for order_id, revoked_at in chunk})
        written = True
        lock.extend()
    _swap(client, temp, MARKERS_KEY, written)
    return MARKERS_KEY


@dataclass
class RebuildReport:
    boards: int = 0
    entries: int = 0
    removed_keys: int = 0
    seconds: float = 0.0


def rebuild_locked(conn: Connection, client: redis.Redis, lock: store.Lock, now: datetime) -> RebuildReport:
    """Rebuild from the snapshot ``conn`` while holding ``lock`` (the reconciliation calls it
    under its own lock and snapshot when a board differs)."""
    started = time.perf_counter()
    report = RebuildReport()
    for stale_temp in client.scan_iter(match=TEMP_PREFIX + "*", count=1000):
        client.delete(stale_temp)
    # Markers first: should the rebuild die half-way, pending tasks find their orders
    # claimed and the boards can only lack kilograms (which the reconciliation puts
    # back), never hold an order twice.
    kept = {LOCK_KEY, _write_markers(conn, client, lock)}
    for board in board_totals(conn, now):
        report.entries += _write_board(conn, client, lock, board)
        report.boards += 1
        kept |= {board.key, board.total_key}
    for kind in Kind:
        kept.update(_write_names(conn, client, lock, kind))
    stale = [key for key in client.scan_iter(match=KEY_PREFIX + "*", count=1000) if key.decode() not in kept]
    for i in range(0, len(stale), 1000):
        client.delete(*stale[i:i + 1000])
    report.removed_keys = len(stale)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def rebuild(unit_of_work: UnitsOfWork, client: redis.Redis, now: datetime) -> RebuildReport:
    """Recompute every board, name and marker from the database (``flask ranking rebuild``).
    Raises :class:`ranking.store.LockHeld` when another rebuild is running.

    Takes the unit-of-work factory: the snapshot's unit of work must begin only once the
    lock is held (an order whose script ran before the lock is then in the snapshot)."""
    with store.Lock(client) as lock, snapshot(unit_of_work) as conn:
        report = rebuild_locked(conn, client, lock, now)
    log.info("ranking boards rebuilt", extra={"boards": report.boards, "entries": report.entries,
                                              "seconds": report.seconds})
    return report
