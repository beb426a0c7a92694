"""Operator authentication for write endpoints.

Behind the gateway, operators present an API key (header ``X-API-Key``) to the gateway,
which checks it against its hashed key store and the route's scope, then forwards the
request with an *operator assertion* (header ``X-Diandian-Operator``): a short-lived
token naming the key and its scopes, bound to the request's method and path, signed
with ``INTERNAL_API_SECRET`` (shared by the gateway and the services). A service trusts
the assertion instead of knowing any key.

Without an assertion (a service called directly in development, the services' own
tests) the raw keys of ``OPERATOR_API_KEY`` (one key) and ``OPERATOR_API_KEYS``
(comma-separated) are accepted, each with every scope.

Missing key → 401, wrong key, bad or expired assertion, or a scope the key lacks → 403,
in the platform's error shape.
"""
from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass

from flask import g, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from . import config
from .errors import ApiError

API_KEY_HEADER = "X-API-Key"
OPERATOR_ASSERTION_HEADER = "X-Diandian-Operator"
SCOPES = ("scenes", "projects", "admin")
ADMIN_SCOPE = "admin"
# Long enough for one hop on a busy machine (and modest clock skew between containers),
# short enough that a leaked assertion is soon worthless; it is bound to one route anyway.
ASSERTION_MAX_AGE_S = 60
# Local development only; every deployment sets its own INTERNAL_API_SECRET.
DEVELOPMENT_INTERNAL_SECRET = "diandian-local-development-internal-secret"
# Local development only; signs the guests' participant cookies (gateway) when GATEWAY_SECRET_KEY is unset.
DEVELOPMENT_GATEWAY_SECRET = "diandian-local-development-secret"
ENV_KEY_ID = "env"


@dataclass(frozen=True)
class Operator:
    """Who is calling: the key's id and its scopes (``admin`` implies every scope)."""

    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: str | None) -> bool:
        return scope is None or ADMIN_SCOPE in self.scopes or scope in self.scopes


def internal_secret() -> str:
    return config.env("INTERNAL_API_SECRET", DEVELOPMENT_INTERNAL_SECRET)


def _assertions() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(internal_secret(), salt="diandian.operator-assertion")


def sign_operator_assertion(operator: Operator, method: str, path: str) -> str:
    """The assertion the gateway forwards for ``operator`` calling ``method path``."""
    return _assertions().dumps({"k": operator.key_id, "s": sorted(operator.scopes),
                                "m": method.upper(), "p": path})


def read_operator_assertion(token: str, method: str, path: str,
                            max_age: int = ASSERTION_MAX_AGE_S) -> Operator | None:
    """The operator an assertion names, or None (forged, expired, or for another route)."""
    try:
        claims = _assertions().loads(token, max_age=max_age)
    except BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(claims, dict) or claims.get("m") != method.upper() or claims.get("p") != path:
        return None
    scopes = claims.get("s")
    if not isinstance(claims.get("k"), str) or not isinstance(scopes, list):
        return None
    return Operator(claims["k"], frozenset(s for s in scopes if s in SCOPES))


def operator_keys() -> list[str]:
    keys = [config.env("OPERATOR_API_KEY")]
    keys += (config.env("OPERATOR_API_KEYS", "") or "").split(",")
    return [k.strip() for k in keys if k and k.strip()]


def _operator_from_request() -> Operator:
    assertion = request.headers.get(OPERATOR_ASSERTION_HEADER)
    if assertion is not None:
        operator = read_operator_assertion(assertion, request.method, request.path)
        if operator is None:
            raise ApiError(403, "forbidden", "the operator assertion is invalid or expired")
        return operator
    presented = request.headers.get(API_KEY_HEADER)
    if not presented:
        raise ApiError(401, "unauthorized", f"this endpoint needs an operator key in {API_KEY_HEADER}")
    # Compare against every key (no early exit) so timing does not tell which one matched.
    matches = [hmac.compare_digest(presented.encode(), key.encode()) for key in operator_keys()]
    if not any(matches):
        raise ApiError(403, "forbidden", "the API key is not valid for this endpoint")
    return Operator(ENV_KEY_ID, frozenset(SCOPES))


def check_operator(scope: str | None = None) -> Operator:
    """The request's operator, allowed ``scope``; raises 401/403 otherwise."""
    operator = _operator_from_request()
    if not operator.allows(scope):
        raise ApiError(403, "insufficient_scope",
                       f"this endpoint needs an operator key with the {scope} scope")
    g.operator = operator
    return operator


def operator_required(view=None, *, scope: str | None = None):
    """Decorator for operator-only views: ``@operator_required`` or
    ``@operator_required(scope="admin")``."""
    if view is None:
        return functools.partial(operator_required, scope=scope)

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        check_operator(scope)
        return view(*args, **kwargs)

    return wrapper
