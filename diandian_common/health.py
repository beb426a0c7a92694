"""``GET /healthz`` of every service: one endpoint, two kinds of checks.

- What the API needs to answer at all, its database and Redis: when one fails, ``/healthz``
  is 503 (``status: error``). This is the service's readiness probe: a pod that cannot
  reach them is taken out of rotation.
- What the service's background work needs, its scheduler's heartbeat
  (:mod:`diandian_common.heartbeat`) and checks a service adds (:func:`add_check`: the
  certificates' storage): when one fails, ``/healthz`` stays 200 with ``status: degraded``
  and names it. Taking every API pod out of rotation would cure neither a frozen scheduler
  nor a full disk, and would turn a background fault into an outage; the gateway's
  ``/healthz`` (gateway/health.py), the platform's health that is probed and alerted on,
  answers 503 for a degraded service and names what failed.

Body: ``{"status": "ok" | "degraded" | "error", "service": ..., "checks": {name: "ok" | "error: ..."},
"scheduler": {"name", "last_heartbeat", "age_seconds", "stale_after_seconds"}}`` (``scheduler``
only for a service with a beat schedule). A check that starts failing is logged once as a
WARNING, and its recovery once at INFO, by each API process (probes call it every few seconds).
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Callable

import redis
from flask import Flask, current_app, jsonify

from . import config, heartbeat

log = logging.getLogger(__name__)

# Checks the API needs to answer requests: 503 when one fails.
SERVING_CHECKS = ("database", "redis")
OK = "ok"
# A check: None (or "ok") when fine, else what is wrong; an exception it raises counts as failed.
Check = Callable[[], "str | None"]


def check_redis(url: str) -> None:
    client = heartbeat.redis_client(url)
    try:
        client.ping()
    finally:
        client.close()


def install(app: Flask, service: str, *, scheduled: bool) -> None:
    """Serve ``/healthz``; ``scheduled``: the service runs a scheduler whose heartbeat counts."""
    app.extensions["health"] = _Health(service, scheduled)
    app.add_url_rule("/healthz", "healthz", healthz)


def add_check(app: Flask, name: str, check: Check) -> None:
    """A check of the service's background work (reported, never 503 on the service itself)."""
    if name in SERVING_CHECKS or name == "scheduler":
        raise ValueError(f"{name!r} is a check every service has already")
    app.extensions["health"].extra_checks[name] = check


class _Health:
    def __init__(self, service: str, scheduled: bool):
        self.service = service
        self.scheduled = scheduled
        self.extra_checks: dict[str, Check] = {}
        self._failing: set[str] = set()
        self._lock = threading.Lock()

    def note(self, checks: dict[str, str]) -> None:
        """Log the checks that started failing, and those that recovered, since the last call."""
        failing = {name for name, result in checks.items() if result != OK}
        with self._lock:
            started, recovered = failing - self._failing, self._failing - failing
            self._failing = failing
        for name in sorted(started):
            log.warning("%s health: %s failing: %s", self.service, name, checks[name])
        for name in sorted(recovered):
            log.info("%s health: %s ok again", self.service, name)


def _error(exc: BaseException) -> str:
    detail = str(exc).strip()
    return f"error: {exc.__class__.__name__}" + (f": {detail}" if detail else "")


def _run(check: Check) -> str:
    try:
        problem = check()
    except Exception as exc:  # reported, not raised: this is the health endpoint
        return _error(exc)
    return OK if problem in (None, OK) else f"error: {problem}"


def _scheduler(service: str, unreachable: str | None) -> tuple[str, dict]:
    """The scheduler's check and its section of the body; ``unreachable``: the Redis the
    heartbeats are in, when it did not answer the Redis check (not asked twice)."""
    stale_after = config.scheduler_stale_seconds()
    section = {"name": heartbeat.scheduler_name(service), "last_heartbeat": None, "age_seconds": None,
               "stale_after_seconds": stale_after}
    if unreachable == config.redis_url():
        return "unknown: Redis does not answer", section
    client = heartbeat.redis_client(config.redis_url())
    try:
        beat = heartbeat.read_heartbeat(client, service, stale_after=stale_after)
    except redis.RedisError as exc:
        return f"unknown: the heartbeat could not be read ({exc.__class__.__name__})", section
    finally:
        client.close()
    if beat.last_beat is not None:
        section["last_heartbeat"] = datetime.fromtimestamp(beat.last_beat, timezone.utc).isoformat()
        section["age_seconds"] = round(beat.age, 1)
    problem = beat.problem()
    return (OK if problem is None else f"error: {problem}"), section


def healthz():
    health: _Health = current_app.extensions["health"]
    checks = {}
    try:
        current_app.extensions["db"].ping()
        checks["database"] = OK
    except Exception as exc:  # reported, not raised: this is the health endpoint
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        check_redis(current_app.config["REDIS_URL"])
        checks["redis"] = OK
    except Exception as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    body = {"service": health.service}
    if health.scheduled:
        unreachable = current_app.config["REDIS_URL"] if checks["redis"] != OK else None
        checks["scheduler"], body["scheduler"] = _scheduler(health.service, unreachable)
    for name, check in health.extra_checks.items():
        checks[name] = _run(check)
    health.note(checks)
    serving = all(checks[name] == OK for name in SERVING_CHECKS)
    status = "error" if not serving else "ok" if all(v == OK for v in checks.values()) else "degraded"
    return jsonify({"status": status, **body, "checks": checks}), (200 if serving else 503)
