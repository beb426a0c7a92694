"""Synthetic participants for benchmarks (``flask ranking seed-synthetic``): written in
batches straight into the database and the boards, with no tasks, under the rebuild lock.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from . import settings, store
from .domain.boards import MARKERS_KEY, Board, Kind, boards_at, is_slug, name_versions_key, names_key
from .domain.names import mask_name, organization_key
from .domain.scores import decode, earliness, encode
from .queries import BATCH, Row
from .service import UnitsOfWork

SYNTHETIC_ORDER_PREFIX = "synthetic-order:"


def synthetic_participant_id(scene: str, index: int) -> str:
    """The id of the ``index``-th (0-based) synthetic participant seeded on ``scene``."""
    return f"synthetic:{scene}:{index:07d}"


@dataclass
class SeedReport:
    participants: int = 0
    boards: int = 0
    seconds: float = 0.0


def seed_synthetic(unit_of_work: UnitsOfWork, client: redis.Redis, *, participants: int, scene: str,
                   organizations: int = 0, days: int = 365, seed: int = 1, now: datetime) -> SeedReport:
    """Add ``participants`` synthetic participants with one contribution each on ``scene``,
    written in batches straight into the database and the boards (no tasks). Their orders
    are spread over the last ``days`` days; ``organizations`` > 0 puts about half of them
    into that many synthetic organisations. Holds the rebuild lock meanwhile, so no
    reconciliation or rebuild interleaves with the direct writes.

    Takes the unit-of-work factory: each batch is committed in a unit of work of its own
    before its boards are written."""
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
        with unit_of_work() as uow:
            if uow.session.scalar(select(Row.id).where(Row.order_id.startswith(order_prefix, autoescape=True))
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
            with unit_of_work() as uow:
                uow.session.execute(insert(Row.__table__), rows)
                # the batch's order ids are fixed-width, so this range is exactly the batch
                ids = dict(uow.session.execute(select(Row.order_id, Row.id).where(
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
            with unit_of_work() as uow:
                names = _latest_organization_names(uow.session, {member for _, member in organization_scores})
            _write_organization_names(client, names)
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


def _latest_organization_names(session: Session, members: set[str]) -> dict[str, tuple[int, str]]:
    """member → (id, name) of the organisation's latest contribution, as the scripts keep it."""
    latest = session.execute(
        select(Row.organization_key, Row.organization, func.max(Row.id))
        .where(Row.organization_key.in_(members)).group_by(Row.organization_key, Row.organization)).all()
    chosen: dict[str, tuple[int, str]] = {}
    for member, organization, row_id in latest:
        if member not in chosen or row_id > chosen[member][0]:
            chosen[member] = (row_id, organization)
    return chosen


def _write_organization_names(client: redis.Redis, names: dict[str, tuple[int, str]]) -> None:
    client.hset(names_key(Kind.ORGANIZATION), mapping={m: name for m, (_, name) in names.items()})
    client.hset(name_versions_key(Kind.ORGANIZATION), mapping={m: row_id for m, (row_id, _) in names.items()})
