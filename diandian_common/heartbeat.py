"""Each service's scheduler (``celery beat``) proves it is alive by a heartbeat in Redis.

A frozen scheduler is silent: nothing it should send is sent (outbox relays, the stuck-order
check, the leaderboards' reconciliation), and nothing else notices. So every scheduler runs
:class:`HeartbeatScheduler` (``beat_scheduler`` of :func:`diandian_common.celery_app.make_celery`),
which writes the unix time of its host into ``diandian:<service>:beat:heartbeat`` from its own
loop, at least every ``SCHEDULER_HEARTBEAT_SECONDS``; the service's ``/healthz``
(:mod:`diandian_common.health`) reads it and calls it stale past ``SCHEDULER_STALE_SECONDS``.

The scheduler writes the heartbeat itself rather than sending a periodic task for a worker
to run: a heartbeat task would go stale when the worker is busy or down too, and name the
wrong process. The heartbeat proves the scheduler alone; the workers are watched by their
queues (docs/operations.md, "Queue depth growing, or nobody consuming").
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis
from celery.beat import PersistentScheduler

from . import config

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 1.0


def heartbeat_key(service: str) -> str:
    return f"diandian:{service}:beat:heartbeat"


def scheduler_name(service: str) -> str:
    """The scheduler's name as the Procfile, Compose and Kubernetes call it."""
    return f"{service}-beat"


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S)


def write_heartbeat(client: redis.Redis, service: str, now: float | None = None) -> None:
    client.set(heartbeat_key(service), repr(time.time() if now is None else now))


@dataclass(frozen=True)
class Heartbeat:
    """What ``/healthz`` says of one scheduler."""

    scheduler: str
    last_beat: float | None      # unix time; None when it never wrote one
    now: float
    stale_after: float

    @property
    def age(self) -> float | None:
        return None if self.last_beat is None else max(0.0, self.now - self.last_beat)

    @property
    def stale(self) -> bool:
        return self.age is None or self.age > self.stale_after

    def problem(self) -> str | None:
        """None when fresh; otherwise what is wrong, naming the scheduler."""
        if self.last_beat is None:
            return f"{self.scheduler} has never written a heartbeat"
        if self.stale:
            return (f"{self.scheduler}'s last heartbeat is {self.age:.0f} s old "
                    f"(stale after SCHEDULER_STALE_SECONDS={self.stale_after:g})")
        return None


def read_heartbeat(client: redis.Redis, service: str, now: float | None = None,
                   stale_after: float | None = None) -> Heartbeat:
    raw = client.get(heartbeat_key(service))
    try:
        last = float(raw) if raw is not None else None
    except ValueError:   # not written by a scheduler: as good as none
        last = None
    return Heartbeat(scheduler_name(service), last, time.time() if now is None else now,
                     config.scheduler_stale_seconds() if stale_after is None else stale_after)


class HeartbeatScheduler(PersistentScheduler):
    """Celery's default scheduler (the schedule kept in ``--schedule``'s file), writing the
    heartbeat from its loop. It wakes at least every heartbeat period, whatever its entries'
    periods (ranking's one entry runs every five minutes), and writes at most every half
    period, however often it wakes (orders' relay wakes it every second or two).

    A failed write (Redis away) is logged and tried again half a period later: the
    scheduler itself carries on, and ``/healthz`` reports Redis anyway."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.heartbeat_period = config.scheduler_heartbeat_seconds()
        self.max_interval = min(self.max_interval, self.heartbeat_period)
        self._heartbeat_client: redis.Redis | None = None
        self._last_attempt: float | None = None
        self._failing = False

    @property
    def service(self) -> str:
        return self.app.main

    def tick(self, *args, **kwargs):
        interval = super().tick(*args, **kwargs)
        self.beat_if_due()
        return interval

    def beat_if_due(self) -> None:
        started = time.monotonic()
        if self._last_attempt is not None and started - self._last_attempt < self.heartbeat_period / 2:
            return
        self._last_attempt = started
        try:
            if self._heartbeat_client is None:
                self._heartbeat_client = redis_client(config.redis_url())
            write_heartbeat(self._heartbeat_client, self.service)
        except redis.RedisError as exc:
            if not self._failing:
                log.warning("%s: heartbeat not written (%s: %s); /healthz will call this scheduler "
                            "stale unless Redis answers again", scheduler_name(self.service),
                            exc.__class__.__name__, exc)
            self._failing = True
            return
        if self._failing:
            log.info("%s: heartbeat written again", scheduler_name(self.service))
        self._failing = False

    def close(self):
        super().close()
        if self._heartbeat_client is not None:
            self._heartbeat_client.close()
