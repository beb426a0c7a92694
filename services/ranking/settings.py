"""Configuration of the ranking service (environment variables, read when used)."""
from __future__ import annotations

import functools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from diandian_common import config
from diandian_common.timestamps import utcnow


@functools.lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def tz() -> ZoneInfo:
    """``RANKING_TIMEZONE`` (default ``Asia/Shanghai``): the calendar of day/week/month boards."""
    return _zone(config.env("RANKING_TIMEZONE", "Asia/Shanghai"))


def period_grace() -> timedelta:
    """``RANKING_PERIOD_GRACE_DAYS`` (default 7): how long a period board outlives its period."""
    days = config.env_float("RANKING_PERIOD_GRACE_DAYS", 7)
    if days < 0:
        raise ValueError("RANKING_PERIOD_GRACE_DAYS must not be negative")
    return timedelta(days=days)


def redis_url() -> str:
    """``RANKING_REDIS_URL``, else the platform's ``REDIS_URL``."""
    return config.env("RANKING_REDIS_URL") or config.redis_url()


def read_timeout() -> float:
    """``RANKING_REDIS_TIMEOUT_SECONDS`` (default 0.5): API reads give up (503) after this."""
    return config.env_float("RANKING_REDIS_TIMEOUT_SECONDS", 0.5)


def reconcile_seconds() -> float:
    """``RANKING_RECONCILE_SECONDS`` (default 300): period of ``ranking.reconcile``."""
    return config.env_float("RANKING_RECONCILE_SECONDS", 300)


def now() -> datetime:
    """The clock of the service (one place to stub in tests)."""
    return utcnow()
