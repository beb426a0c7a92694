"""Boards recomputed from the database: rebuild, reconciliation, synthetic seeding.

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
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterator

import redis
from sqlalchemy import ColumnElement, Connection, and_, distinct, func, insert, or_, select

from diandian_common.db import Database

from . import settings, store
from .contributions import NOT_REVOKED, RebuildInProgress, apply_row, member_column, on_board
from .domain.boards import (BOARD_PREFIX, KEY_PREFIX, LOCK_KEY, MARKERS_KEY, TEMP_PREFIX, Board, Kind,
                            boards_at, is_slug, name_versions_key, names_key)
from .domain.names import mask_name, organization_key
from .domain.periods import Period, live_buckets
from .domain.scores import decode, earliness, encode
from .models import ContributionRow

log = logging.getLogger(__name__)

BATCH = 10_000
# The reconciliation re-applies rows touched in the last day whose marker disagrees with
# the database, leaving alone rows younger than a minute (their tasks are still running).
RECONCILE_LOOKBACK = timedelta(days=1)
RECONCILE_SETTLE = timedelta(seconds=60)
# More unapplied recent rows than this means the workers lag far behind: comparing
# totals then says nothing useful, so the reconciliation waits for the next round.
MAX_IN_FLIGHT = 5_000

Row = ContributionRow


@contextmanager
def snapshot(database: Database) -> Iterator[Connection]:
    """One read-consistent view of the database for every query of a rebuild."""
    with database.engine.connect() as conn:
        if not database.is_sqlite:
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def board_totals(conn: Connection, now: datetime,
                 effective: ColumnElement[bool] = NOT_REVOKED) -> dict[Board, tuple[int, int]]:
    """(members, grams) of every live board with at least one ``effective`` row."""
    tz, grace = settings.tz(), settings.period_grace()
    totals: dict[Board, tuple[int, int]] = {}
    for period in Period:
        for bucket in live_buckets(period, now, tz, grace):
            for kind in Kind:
                member = member_column(kind)
                where = and_(*on_board(Board(kind, None, bucket)), effective)
                aggregates = (func.count(distinct(member)), func.coalesce(func.sum(Row.quantity_g), 0))
                members, grams = conn.execute(select(*aggregates).where(where)).one()
                if members:
                    totals[Board(kind, None, bucket)] = (members, int(grams))
                by_scene = select(Row.scene, *aggregates).where(where, Row.scene.is_not(None)).group_by(Row.scene)
                for scene, members, grams in conn.execute(by_scene):
                    totals[Board(kind, scene, bucket)] = (members, int(grams))
    return totals


def _stream(conn: Connection, statement):
    return conn.execution_options(yield_per=BATCH).execute(statement).partitions()


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
    for chunk in _stream(conn, statement):
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
    for chunk in _stream(conn, statement):
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
    for chunk in _stream(conn, select(Row.order_id, Row.revoked_at)):
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


def _rebuild_locked(conn: Connection, client: redis.Redis, lock: store.Lock, now: datetime) -> RebuildReport:
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


def rebuild(database: Database, client: redis.Redis, now: datetime) -> RebuildReport:
    """Recompute every board, name and marker from the database (``flask ranking rebuild``).
    Raises :class:`ranking.store.LockHeld` when another rebuild is running."""
    with store.Lock(client) as lock, snapshot(database) as conn:
        report = _rebuild_locked(conn, client, lock, now)
    log.info("ranking boards rebuilt", extra={"boards": report.boards, "entries": report.entries,
                                              "seconds": report.seconds})
    return report


# --- reconciliation ---------------------------------------------------------------

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


def sweep(database: Database, client: redis.Redis, now: datetime) -> int:
    """Re-apply rows touched in the lookback window (older than the settle time) that Redis
    does not reflect: the repair for a Redis write that failed after the database commit."""
    with database.engine.connect() as conn:
        statement = (select(Row.order_id, Row.revoked_at)
                     .where(_touched_since(now - RECONCILE_LOOKBACK, now - RECONCILE_SETTLE)))
        behind = [order_id for chunk in _stream(conn, statement)
                  for order_id, _revoked, _marker in _disagreeing(client, chunk)]
    repaired = 0
    for order_id in behind:
        with database.transaction() as session:
            row = session.scalars(select(Row).where(Row.order_id == order_id)).one()
        try:
            apply_row(database, client, row, now)
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


def reconcile(database: Database, client: redis.Redis, now: datetime) -> ReconcileReport:
    """``ranking.reconcile``: repair recent rows Redis missed, then compare every live board's
    member count and grams with the database and rebuild when any differ.

    The comparison runs under the rebuild lock, so Redis holds still; rows touched within
    the settle time whose scripts have not run yet (their marker disagrees) are taken out
    of the expected totals, so an order in flight is not mistaken for damage.
    """
    report = ReconcileReport(repaired=sweep(database, client, now))
    lock = store.Lock(client)
    try:
        lock.acquire()
    except store.LockHeld:
        report.skipped = "a rebuild is running"
        return report
    try:
        with snapshot(database) as conn:
            # Older rows were just swept: one still disagreeing now is damage, not in flight.
            recent = select(Row.order_id, Row.revoked_at).where(_touched_since(now - RECONCILE_SETTLE))
            in_flight = [item for chunk in _stream(conn, recent) for item in _disagreeing(client, chunk)]
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
                report.rebuilt = _rebuild_locked(conn, client, lock, now)
    finally:
        lock.release()
    return report


# --- synthetic participants for benchmarks ----------------------------------------

SYNTHETIC_ORDER_PREFIX = "synthetic-order:"


def synthetic_participant_id(scene: str, index: int) -> str:
    """The id of the ``index``-th (0-based) synthetic participant seeded on ``scene``."""
    return f"synthetic:{scene}:{index:07d}"


@dataclass
class SeedReport:
    participants: int = 0
    boards: int = 0
    seconds: float = 0.0


def seed_synthetic(database: Database, client: redis.Redis, *, participants: int, scene: str,
                   organizations: int = 0, days: int = 365, seed: int = 1, now: datetime) -> SeedReport:
    """Add ``participants`` synthetic participants with one contribution each on ``scene``,
    written in batches straight into the database and the boards (no tasks). Their orders
    are spread over the last ``days`` days; ``organizations`` > 0 puts about half of them
    into that many synthetic organisations. Holds the rebuild lock meanwhile, so no
    reconciliation or rebuild interleaves with the direct writes."""
    if not is_slug(scene):
        raise ValueError(f"not a scene slug: {scene!r}")
    if participants < 1 or organizations < 0 or days < 0:
        raise ValueError("participants must be positive; organizations and days not negative")
    started = time.perf_counter()
    tz, grace = settings.tz(), settings.period_grace()
    rng = random.Random(seed)
    order_prefix = f"{SYNTHETIC_ORDER_PREFIX}{scene}:"
    boards_by_day: dict[tuple[Kind, object], list[Board]] = {}
    organization_scores: dict[tuple[Board, str], list[int]] = {}  # → [grams, earliness]
    touched: set[Board] = set()

    def boards_for(kind: Kind, occurred_at: datetime) -> list[Board]:
        day = occurred_at.astimezone(tz).date()   # every bucket of a contribution follows its local day
        if (kind, day) not in boards_by_day:
            boards_by_day[(kind, day)] = boards_at(kind, scene, occurred_at, tz, now, grace)
        return boards_by_day[(kind, day)]

    with store.Lock(client) as lock:
        with database.transaction() as session:
            if session.scalar(select(Row.id).where(Row.order_id.startswith(order_prefix, autoescape=True))
                              .limit(1)) is not None:
                raise ValueError(f"scene {scene} already has synthetic participants; "
                                 "use another scene or a fresh database")
        for first in range(0, participants, BATCH):
            rows = []
            for i in range(first, min(first + BATCH, participants)):
                organization = None
                if organizations and rng.random() < 0.5:
                    organization = f"Synthetic organisation {rng.randrange(organizations) + 1} of {scene}"
                rows.append(dict(
                    order_id=f"{order_prefix}{i:07d}", participant_id=synthetic_participant_id(scene, i),
                    display_name=f"访客{i}" if rng.random() < 0.5 else f"Guest {i}",
                    mask_name=rng.random() < 0.3, organization=organization,
                    organization_key=organization_key(organization) if organization else None,
                    scene=scene, quantity_g=1000 * max(1, min(100_000, int(rng.paretovariate(1.2) * 20))),
                    occurred_at=now - timedelta(seconds=rng.randrange(days * 86_400 + 1)), recorded_at=now))
            with database.transaction() as session:
                session.execute(insert(Row.__table__), rows)
                # the batch's order ids are fixed-width, so this range is exactly the batch
                ids = dict(session.execute(select(Row.order_id, Row.id).where(
                    Row.order_id >= rows[0]["order_id"], Row.order_id <= rows[-1]["order_id"])).all())
            by_board: dict[Board, dict[str, float]] = {}
            names, versions = {}, {}
            for row in rows:
                row_id = ids[row["order_id"]]
                tie = earliness(row["occurred_at"])
                for board in boards_for(Kind.INDIVIDUAL, row["occurred_at"]):
                    by_board.setdefault(board, {})[row["participant_id"]] = encode(row["quantity_g"], tie)
                if row["organization_key"]:
                    for board in boards_for(Kind.ORGANIZATION, row["occurred_at"]):
                        score = organization_scores.setdefault((board, row["organization_key"]), [0, tie])
                        score[0] += row["quantity_g"]
                        score[1] = min(score[1], tie)
                names[row["participant_id"]] = (mask_name(row["display_name"]) if row["mask_name"]
                                                else row["display_name"])
                versions[row["participant_id"]] = row_id
            pipe = client.pipeline(transaction=False)
            for board, scores in by_board.items():
                pipe.zadd(board.key, scores)
                pipe.incrby(board.total_key, sum(int(s) for s in scores.values()))
                touched.add(board)
            pipe.hset(names_key(Kind.INDIVIDUAL), mapping=names)
            pipe.hset(name_versions_key(Kind.INDIVIDUAL), mapping=versions)
            pipe.hset(MARKERS_KEY, mapping={row["order_id"]: store.RECORDED for row in rows})
            pipe.execute()
            lock.extend()
        _merge_organizations(client, organization_scores, touched)
        if organization_scores:
            _write_organization_names(database, client, {member for _, member in organization_scores})
        for board in touched:
            expires_at = board.expires_at(grace)
            if expires_at is not None:
                client.expireat(board.key, int(expires_at.timestamp()))
                client.expireat(board.total_key, int(expires_at.timestamp()))
    return SeedReport(participants=participants, boards=len(touched),
                      seconds=round(time.perf_counter() - started, 3))


def _merge_organizations(client: redis.Redis, scores: dict[tuple[Board, str], list[int]],
                         touched: set[Board]) -> None:
    """Add the seeded organisations' totals to whatever their boards already hold,
    exactly as the record script would."""
    items = list(scores.items())
    pipe = client.pipeline(transaction=False)
    for (board, member), _ in items:
        pipe.zscore(board.key, member)
    existing = pipe.execute()
    pipe = client.pipeline(transaction=False)
    for ((board, member), (grams, tie)), old in zip(items, existing):
        if old is not None:
            old_grams, old_tie = decode(old)
            grams, tie = grams + old_grams, min(tie, old_tie)
        pipe.zadd(board.key, {member: encode(grams, tie)})
        pipe.incrby(board.total_key, scores[(board, member)][0])
        touched.add(board)
    pipe.execute()


def _write_organization_names(database: Database, client: redis.Redis, members: set[str]) -> None:
    with database.transaction() as session:
        latest = session.execute(
            select(Row.organization_key, Row.organization, func.max(Row.id))
            .where(Row.organization_key.in_(members)).group_by(Row.organization_key, Row.organization)).all()
    chosen: dict[str, tuple[int, str]] = {}
    for member, organization, row_id in latest:
        if member not in chosen or row_id > chosen[member][0]:
            chosen[member] = (row_id, organization)
    client.hset(names_key(Kind.ORGANIZATION), mapping={m: name for m, (_, name) in chosen.items()})
    client.hset(name_versions_key(Kind.ORGANIZATION), mapping={m: row_id for m, (row_id, _) in chosen.items()})
