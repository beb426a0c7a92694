"""``GET /healthz``: ok once every service and Redis answer (docs/contract.md §5 "Conventions")."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from diandian_common import config
from diandian_common.web import check_redis

TIMEOUT = (1.0, 2.0)


def _service_status(session: requests.Session, base_url: str) -> str:
    try:
        response = session.get(f"{base_url}/healthz", timeout=TIMEOUT)
    except requests.RequestException as exc:
        return f"unreachable ({exc.__class__.__name__})"
    if response.status_code == 200:
        return "ok"
    try:
        checks = response.json().get("checks", {})
        failing = ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
    except ValueError:
        failing = ""
    return f"error {response.status_code}" + (f" ({failing})" if failing else "")


def _redis_status() -> str:
    try:
        check_redis(config.redis_url())
        return "ok"
    except Exception as exc:  # reported, not raised: this is the health check
        return f"unreachable ({exc.__class__.__name__})"


def check_all(session: requests.Session, base_urls: dict[str, str]) -> tuple[bool, dict]:
    with ThreadPoolExecutor(max_workers=len(base_urls) + 1) as pool:
        futures = {name: pool.submit(_service_status, session, url) for name, url in base_urls.items()}
        futures["redis"] = pool.submit(_redis_status)
        statuses = {name: future.result() for name, future in futures.items()}
    return all(v == "ok" for v in statuses.values()), statuses
