"""``GET /healthz``: the platform's health, ok once every service, its scheduler and Redis
answer (docs/contract.md §5 "Conventions", docs/operations.md "Health").

Each service's own ``/healthz`` (diandian_common/health.py) is 503 when its API cannot serve,
and 200 ``degraded`` when its background work is in trouble (a stale scheduler, the
certificates' storage): here both are failures, named in ``services``, and every scheduler's
last heartbeat is listed under ``schedulers``.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from diandian_common import config
from diandian_common.health import check_redis

TIMEOUT = (1.0, 2.0)


def service_status(status_code: int, body: object) -> tuple[str, dict | None]:
    """What the gateway says of one service from its ``/healthz`` answer: ``ok``,
    ``degraded (<check>: <why>, ...)`` or ``error <status> (...)``; and its scheduler's
    section (None if it has no scheduler)."""
    body = body if isinstance(body, dict) else {}
    checks = body.get("checks") if isinstance(body.get("checks"), dict) else {}
    failing = ", ".join(f"{name}: {result}" for name, result in checks.items() if result != "ok")
    scheduler = body.get("scheduler") if isinstance(body.get("scheduler"), dict) else None
    if scheduler is not None and "scheduler" in checks:
        scheduler = {**scheduler, "status": checks["scheduler"]}
    if status_code == 200:
        return ("ok" if not failing else f"degraded ({failing})"), scheduler
    return f"error {status_code}" + (f" ({failing})" if failing else ""), scheduler


def _service_status(session: requests.Session, base_url: str) -> tuple[str, dict | None]:
    try:
        response = session.get(f"{base_url}/healthz", timeout=TIMEOUT)
    except requests.RequestException as exc:
        return f"unreachable ({exc.__class__.__name__})", None
    try:
        body = response.json()
    except ValueError:
        body = None
    return service_status(response.status_code, body)


def _redis_status() -> str:
    try:
        check_redis(config.redis_url())
        return "ok"
    except Exception as exc:  # reported, not raised: this is the health check
        return f"unreachable ({exc.__class__.__name__})"


def check_all(session: requests.Session, base_urls: dict[str, str]) -> tuple[bool, dict]:
    """Whether everything is ok, and the body of the gateway's ``/healthz``."""
    with ThreadPoolExecutor(max_workers=len(base_urls) + 1) as pool:
        futures = {name: pool.submit(_service_status, session, url) for name, url in base_urls.items()}
        redis_future = pool.submit(_redis_status)
        answers = {name: future.result() for name, future in futures.items()}
    statuses = {name: status for name, (status, _scheduler) in answers.items()}
    statuses["redis"] = redis_future.result()
    schedulers = {section.pop("name", f"{name}-beat"): section
                  for name, (_status, section) in answers.items() if section is not None}
    ok = all(v == "ok" for v in statuses.values())
    return ok, {"status": "ok" if ok else "error", "services": statuses, "schedulers": schedulers}
