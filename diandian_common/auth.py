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

Guests are who the gateway says: the gateway reads the browser's signed participant cookie
and forwards a *participant assertion* (header ``X-Diandian-Participant``) naming the
participant id and the client's address, bound to the method and path like the operator
assertion. A service never takes a participant id from a request body as identity; only an
operator key with the ``guests`` scope (a kiosk, an integration) may name a participant, and
that name is namespaced by the key (:func:`on_behalf_participant_id`).
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
PARTICIPANT_ASSERTION_HEADER = "X-Diandian-Participant"
# guests: place orders and estimates on behalf of guests it names (kiosks, integrations).
SCOPES = ("scenes", "projects", "guests", "admin")
ADMIN_SCOPE = "admin"
GUESTS_SCOPE = "guests"
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


@dataclass(frozen=True)
class Guest:
    """A guest as the gateway vouches for them: their participant id (from the signed
    cookie) and the address they called from."""

    participant_id: str
    address: str


def _participant_assertions() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(internal_secret(), salt="diandian.participant-assertion")


def sign_participant_assertion(guest: Guest, method: str, path: str) -> str:
    """The assertion the gateway forwards for ``guest`` calling ``method path``."""
    return _participant_assertions().dumps({"p": guest.participant_id, "a": guest.address,
                                            "m": method.upper(), "u": path})


def read_participant_assertion(token: str, method: str, path: str,
                               max_age: int = ASSERTION_MAX_AGE_S) -> Guest | None:
    """The guest an assertion names, or None (forged, expired, or for another route)."""
    try:
        claims = _participant_assertions().loads(token, max_age=max_age)
    except BadSignature:
        return None
    if not isinstance(claims, dict) or claims.get("m") != method.upper() or claims.get("u") != path:
        return None
    if not isinstance(claims.get("p"), str) or not claims["p"] or not isinstance(claims.get("a"), str):
        return None
    return Guest(claims["p"], claims["a"])


def request_guest() -> Guest | None:
    """The guest the gateway vouches for on this request; None without an assertion.
    A forged, expired or misdirected assertion is 403: someone tried to be someone else."""
    if "guest" not in g:
        token = request.headers.get(PARTICIPANT_ASSERTION_HEADER)
        guest = None
        if token is not None:
            guest = read_participant_assertion(token, request.method, request.path)
            if guest is None:
                raise ApiError(403, "forbidden", "the participant assertion is invalid or expired")
        g.guest = guest
    return g.guest


def presented_operator() -> Operator | None:
    """The request's operator (any scope) if it presents one, else None; a key or
    assertion presented and not valid is still 401/403."""
    if request.headers.get(OPERATOR_ASSERTION_HEADER) is None and request.headers.get(API_KEY_HEADER) is None:
        return None
    return check_operator()


def on_behalf_participant_id(operator: Operator, named_id: str) -> str:
    """The participant id of a guest an operator key names: namespaced by the key, so no
    key can take the place of a browser's guest (``p_…``) or of another key's guests."""
    return f"{operator.key_id}~{named_id}"


def acting_participant_id(named_id: str | None, field: tuple[str, ...]) -> str | None:
    """The participant a request acts for: the guest the gateway vouches for, or the one
    ``named_id`` names (the body's ``field``) when an operator key with the guests scope
    sent it; None when the request has neither. A name from anyone else is refused (422):
    a client never says who it is."""
    if named_id is None:
        guest = request_guest()
        return guest.participant_id if guest else None
    if presented_operator() is None:
        message = ("participant ids are assigned by the platform (the browser's cookie); naming a "
                   f"guest needs an operator key with the {GUESTS_SCOPE} scope")
        errors: dict = {field[-1]: [message]}
        for name in reversed(field[:-1]):
            errors = {name: errors}
        raise ApiError(422, "validation_error", "some fields are invalid", errors)
    return on_behalf_participant_id(check_operator(GUESTS_SCOPE), named_id)


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
