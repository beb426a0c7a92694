"""Calendar periods of the boards, in the ranking time zone.

A period board covers one calendar day, ISO week (Monday to Sunday) or month of the
local calendar; its bounds are computed on local dates and only then converted to UTC,
so days that are 23 or 25 hours long around a DST change are still exactly one day.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo


class Period(StrEnum):
    ALL = "all"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class Bucket:
    """One board period: all time, or a local day/week/month as a UTC half-open range."""

    period: Period
    label: str                    # "all", "2025-03-14", "2025-W11", "2025-03"
    start: datetime | None = None  # inclusive, UTC; None for all time
    end: datetime | None = None    # exclusive, UTC; None for all time

    def contains(self, instant: datetime) -> bool:
        return self.start is None or self.start <= instant < self.end

    def expires_at(self, grace: timedelta) -> datetime | None:
        """When the board of this period may disappear: the period's end plus ``grace``."""
        return None if self.end is None else self.end + grace

    def is_live(self, now: datetime, grace: timedelta) -> bool:
        expiry = self.expires_at(grace)
        return expiry is None or now < expiry


ALL_TIME = Bucket(Period.ALL, "all")


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # A midnight skipped by a DST jump resolves (fold=0) to the instant of the jump,
    # which is exactly when that local day begins.
    return datetime.combine(day, time(), tzinfo=tz).astimezone(timezone.utc)


def bucket_of(period: Period, instant: datetime, tz: ZoneInfo) -> Bucket:
    """The bucket of ``period`` that contains ``instant`` (an aware datetime)."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    if period is Period.ALL:
        return ALL_TIME
    day = instant.astimezone(tz).date()
    if period is Period.DAY:
        first, following, label = day, day + timedelta(days=1), day.isoformat()
    elif period is Period.WEEK:
        first = day - timedelta(days=day.weekday())
        following = first + timedelta(days=7)
        iso_year, iso_week, _ = day.isocalendar()
        label = f"{iso_year}-W{iso_week:02d}"
    else:
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        label = f"{first.year:04d}-{first.month:02d}"
    return Bucket(period, label, _local_midnight(first, tz), _local_midnight(following, tz))


def live_buckets(period: Period, now: datetime, tz: ZoneInfo, grace: timedelta) -> list[Bucket]:
    """Buckets of ``period`` that have started and not yet expired at ``now``, newest first."""
    bucket = bucket_of(period, now, tz)
    if period is Period.ALL:
        return [bucket]
    live = []
    while bucket.is_live(now, grace):
        live.append(bucket)
        bucket = bucket_of(period, bucket.start - timedelta(microseconds=1), tz)
    return live
