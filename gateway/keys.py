"""Operator API keys, stored hashed in the gateway's database.

A key reads ``dd_<id>_<secret>``: the id (public, shown by ``keys list``) names the row,
the secret is 256 random bits. Only the SHA-256 of the whole key is stored. A fast hash
is the right one here: the keys are high-entropy, so a slow hash would add latency to
every operator request and no protection. The lookup is by hash, so what an attacker
can time is a comparison of hashes of their own guesses, which says nothing about a key.

``OPERATOR_API_KEY`` (any string the deployer chose, so it should be long and random too)
is mirrored as the row ``env`` with every scope by :meth:`KeyStore.ensure_operator`, run
at start-up.

:func:`authorize_request` applies the scope table of :mod:`gateway.routes` to a request.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import current_app, g, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from diandian_common.auth import ADMIN_SCOPE, API_KEY_HEADER, ENV_KEY_ID, GUESTS_SCOPE, SCOPES, Operator
from diandian_common.db import Database
from diandian_common.errors import ApiError

from .models import ApiKey
from .routes import required_scope

KEY_PREFIX = "dd_"
# Where guests act (public routes): a key with the guests scope is passed on here.
GUEST_ROUTES = re.compile(r"/api/v1/(orders(/[^/]+(/payment|/checkout)?)?|estimates)")
ENV_KEY_NAME = "OPERATOR_API_KEY"


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def checked_scopes(scopes) -> frozenset[str]:
    chosen = frozenset(scopes)
    unknown = chosen - set(SCOPES)
    if not chosen or unknown:
        got = ", ".join(sorted(chosen)) or "none"
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {got}")
    return chosen


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> "KeyInfo":
        return cls(row.id, row.name, row.scope_set, row.created_at, row.revoked_at)


class KeyStore:
    def __init__(self, database: Database):
        self.database = database

    def authenticate(self, raw_key: str) -> Operator | None:
        """The operator of a valid, unrevoked key; None for any other string."""
        with self.database.transaction() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(raw_key)))
            if row is None or row.revoked_at is not None:
                return None
            return Operator(row.id, row.scope_set)

    def create(self, name: str, scopes) -> tuple[KeyInfo, str]:
        """A new key: its details and the key itself, which is never stored."""
        name = name.strip()
        if not 0 < len(name) <= 200:
            raise ValueError("a key needs a name of 1 to 200 characters")
        scopes = checked_scopes(scopes)
        key_id = secrets.token_hex(4)
        raw_key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        row = ApiKey(id=key_id, name=name, key_hash=hash_key(raw_key), scopes=" ".join(sorted(scopes)),
                     created_at=datetime.now(timezone.utc))
        with self.database.transaction() as session:
            session.add(row)
        return KeyInfo.of(row), raw_key

    def revoke(self, key_id: str) -> KeyInfo | None:
        """Revoke a key (again is harmless); None when no key has that id."""
        with self.database.transaction() as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = datetime.now(timezone.utc)
            return KeyInfo.of(row)

    def list(self) -> list[KeyInfo]:
        with self.database.transaction() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))
            return [KeyInfo.of(row) for row in rows]

    def ensure_operator(self, raw_key: str | None) -> str:
        """Make the ``env`` row mirror ``OPERATOR_API_KEY``: a valid key with every scope
        when set, revoked when unset. Idempotent; says what it did."""
        with self.database.transaction() as session:
            row = session.get(ApiKey, ENV_KEY_ID)
            if not raw_key:
                if row is None or row.revoked_at is not None:
                    return "absent"
                row.revoked_at = datetime.now(timezone.utc)
                return "revoked"
            wanted = {"key_hash": hash_key(raw_key), "scopes": " ".join(sorted(SCOPES)), "revoked_at": None}
            if row is None:
                session.add(ApiKey(id=ENV_KEY_ID, name=ENV_KEY_NAME, created_at=datetime.now(timezone.utc),
                                   **wanted))
                return "created"
            if all(getattr(row, field) == value for field, value in wanted.items()):
                return "unchanged"
            for field, value in wanted.items():
                setattr(row, field, value)
            return "updated"


def request_operator() -> Operator | None:
    """The operator of this request's ``X-API-Key`` (None: no key, or not a valid one),
    looked up once per request (the rate limiter asks first, then the route)."""
    if "api_key_operator" not in g:
        raw_key = request.headers.get(API_KEY_HEADER)
        try:
            g.api_key_operator = current_app.extensions["keys"].authenticate(raw_key) if raw_key else None
        except SQLAlchemyError as exc:
            raise ApiError(503, "service_unavailable", "the gateway's key store is unavailable") from exc
    return g.api_key_operator


def authorize_request() -> Operator | None:
    """The operator to pass on for this request, after checking the route's scope:
    401 without a key, 403 for an unknown or revoked key or one lacking the scope.

    On a public route a key is not needed and not checked; an admin key still goes
    along, so an operator-only route missing from the table is reachable by admins and
    by no one else (the service answers 401 without an operator)."""
    scope = required_scope(request.method, request.path)
    if scope is None:
        try:
            operator = request_operator()
        except ApiError:  # the key store is down: public routes keep working
            return None
        if operator is None:
            return None
        # A key with the guests scope acts for the guests it names where guests act: placing
        # orders and estimates, paying and reading their orders.
        acts_for_guests = GUESTS_SCOPE in operator.scopes and GUEST_ROUTES.fullmatch(request.path) is not None
        return operator if ADMIN_SCOPE in operator.scopes or acts_for_guests else None
    if not request.headers.get(API_KEY_HEADER):
        raise ApiError(401, "unauthorized", f"this endpoint needs an operator key in {API_KEY_HEADER}")
    operator = request_operator()
    if operator is None:
        raise ApiError(403, "forbidden", "the API key is not valid (unknown or revoked)")
    if not operator.allows(scope):
        raise ApiError(403, "insufficient_scope",
                       f"this endpoint needs an operator key with the {scope} scope")
    return operator
