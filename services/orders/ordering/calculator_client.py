"""Reads scenes and estimates from the calculator over HTTP (never its tables)."""
from __future__ import annotations

import logging
from decimal import Decimal

import requests
from requests.adapters import HTTPAdapter

from diandian_common import config
from diandian_common.errors import ApiError

log = logging.getLogger(__name__)

_session: requests.Session | None = None
TIMEOUT = (2.0, 5.0)  # connect, read (seconds)


def _http() -> requests.Session:
    global _session
    if _session is None:
        _session = requests.Session()
        _session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=1))
        _session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=1))
    return _session


def _get(path: str) -> dict | None:
    url = f"{config.service_url('calculator')}{path}"
    try:
        response = _http().get(url, timeout=TIMEOUT)
    except requests.RequestException as exc:
        log.warning("calculator unreachable: %s", exc)
        raise ApiError(503, "calculator_unavailable", "the calculator service is not answering") from exc
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise ApiError(503, "calculator_unavailable", f"the calculator answered {response.status_code}")
    return response.json()


def scene(slug: str) -> dict | None:
    """``{"slug", "name", "name_en"}`` of a scene, or None when the calculator does not know it."""
    body = _get(f"/api/v1/scenes/{requests.utils.quote(slug, safe='')}")
    if body is None:
        return None
    return {"slug": body["slug"], "name": body.get("name") or body["slug"],
            "name_en": body.get("name_en") or None}


def estimate(estimate_id: str) -> dict | None:
    """``{"id", "total_kg": Decimal, "scene"}`` of an estimate, or None when unknown."""
    body = _get(f"/api/v1/estimates/{requests.utils.quote(estimate_id, safe='')}")
    if body is None:
        return None
    return {"id": body["id"], "total_kg": Decimal(str(body["total_kg"])), "scene": body.get("scene")}
