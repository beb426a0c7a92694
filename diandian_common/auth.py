"""Operator authentication for write endpoints (header ``X-API-Key``).

Keys come from ``OPERATOR_API_KEY`` (one key, every scope) and ``OPERATOR_API_KEYS``
(comma-separated). Missing key → 401, wrong key → 403, in the platform's error shape.
"""
from __future__ import annotations

import functools
import hmac

from flask import request

from . import config
from .errors import ApiError

API_KEY_HEADER = "X-API-Key"


def operator_keys() -> list[str]:
    keys = [config.env("OPERATOR_API_KEY")]
    keys += (config.env("OPERATOR_API_KEYS", "") or "").split(",")
    return [k.strip() for k in keys if k and k.strip()]


def check_operator() -> None:
    presented = request.headers.get(API_KEY_HEADER)
    if not presented:
        raise ApiError(401, "unauthorized", f"this endpoint needs an operator key in {API_KEY_HEADER}")
    if not any(hmac.compare_digest(presented.encode(), key.encode()) for key in operator_keys()):
        raise ApiError(403, "forbidden", "the API key is not valid for this endpoint")


def operator_required(view):
    """Decorator for operator-only views."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        check_operator()
        return view(*args, **kwargs)

    return wrapper
