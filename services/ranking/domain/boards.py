"""Which boards exist, how they are keyed in Redis, and which boards an order is on.

A board is (kind, scope, period bucket):
- kind: ``individual`` (members are participant ids) or ``organization`` (members are
  organisation keys, see :func:`ranking.domain.names.organization_key`);
- scope: ``global`` or one scene (by slug);
- bucket: all time, or a local day / ISO week / month (see :mod:`ranking.domain.periods`).

Keys (``rank:`` prefix):
- ``rank:board:{id}``     sorted set member → score (:mod:`ranking.domain.scores`)
- ``rank:total:{id}``     integer grams on the board (lets reconciliation compare totals
                          without reading every member)
- ``rank:names:{kind}``   hash member → display name (already masked when asked for)
- ``rank:name_versions:{kind}``  hash member → id of the contribution the name came from
- ``rank:orders``         hash order id → ``r`` (recorded) / ``x`` (revoked): the
                          exactly-once markers
- ``rank:lock:rebuild``   held while boards are rebuilt; writers wait for it

with ``{id}`` = ``{kind}:{scope}:{period}`` such as ``individual:global:all`` or
``organization:scene:forum-2025:week:2025-W11``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from .periods import ALL_TIME, Bucket, Period, bucket_of

KEY_PREFIX = "rank:"
BOARD_PREFIX = KEY_PREFIX + "board:"
TOTAL_PREFIX = KEY_PREFIX + "total:"
TEMP_PREFIX = KEY_PREFIX + "tmp:"
MARKERS_KEY = KEY_PREFIX + "orders"
LOCK_KEY = KEY_PREFIX + "lock:rebuild"

# Scene slugs as the calculator issues them; a slug can never contain ":" and so
# cannot be confused with another part of a key.
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"
SLUG_RE = re.compile(SLUG_PATTERN)


class Kind(StrEnum):
    INDIVIDUAL = "individual"
    ORGANIZATION = "organization"


def names_key(kind: Kind) -> str:
    return f"{KEY_PREFIX}names:{kind}"


def name_versions_key(kind: Kind) -> str:
    return f"{KEY_PREFIX}name_versions:{kind}"


def is_slug(value: str) -> bool:
    return bool(SLUG_RE.match(value))


@dataclass(frozen=True)
class Board:
    kind: Kind
    scene: str | None
    bucket: Bucket

    def __post_init__(self):
        if self.scene is not None and not is_slug(self.scene):
            raise ValueError(f"not a scene slug: {self.scene!r}")

    @property
    def id(self) -> str:
        scope = "global" if self.scene is None else f"scene:{self.scene}"
        period = "all" if self.bucket.period is Period.ALL else f"{self.bucket.period}:{self.bucket.label}"
        return f"{self.kind}:{scope}:{period}"

    @property
    def key(self) -> str:
        return BOARD_PREFIX + self.id

    @property
    def total_key(self) -> str:
        return TOTAL_PREFIX + self.id

    def expires_at(self, grace: timedelta) -> datetime | None:
        return self.bucket.expires_at(grace)


def current_board(kind: Kind, scene: str | None, period: Period, now: datetime, tz: ZoneInfo) -> Board:
    """The board a reader means by (kind, scene, period): the period that contains ``now``."""
    return Board(kind, scene, bucket_of(period, now, tz))


def boards_at(kind: Kind, scene: str | None, occurred_at: datetime, tz: ZoneInfo,
              now: datetime, grace: timedelta) -> list[Board]:
    """Every live board of ``kind`` that something which happened at ``occurred_at`` counts on:
    global and (with a scene) the scene's, for all time and for its day, week and month.
    Period boards that have already expired at ``now`` are left out."""
    boards = []
    for scene_scope in (None, scene) if scene else (None,):
        for period in Period:
            bucket = ALL_TIME if period is Period.ALL else bucket_of(period, occurred_at, tz)
            if bucket.is_live(now, grace):
                boards.append(Board(kind, scene_scope, bucket))
    return boards
