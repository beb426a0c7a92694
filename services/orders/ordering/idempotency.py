"""The Idempotency-Key protocol of ``POST /orders`` (the rules are in domain/idempotency.py).

A key seen before with the same request answers the stored response (``Idempotent-Replayed:
true``); with another request, 409. A new key places the order, checked again under the
write lock; on PostgreSQL a racing twin can insert the same key first, and its stored answer
is then the answer.
"""
from __future__ import annotations

from typing import Callable

from flask import request
from sqlalchemy.exc import IntegrityError

from diandian_common.errors import ApiError
from diandian_common.uow import UnitOfWork

from ..wiring import unit_of_work
from . import service
from .domain import idempotency

HEADER = "Idempotency-Key"


def key_from_request() -> str:
    key = request.headers.get(HEADER, "").strip()
    if not key or len(key) > idempotency.MAX_KEY_LENGTH:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {HEADER: [f"required header, 1 to {idempotency.MAX_KEY_LENGTH} characters"]})
    return key


def replayed(key: str, fingerprint: str):
    """The stored response for ``key``, None when new; 409 when reused for another body."""
    with unit_of_work() as uow:
        record = service.find_idempotent(uow.session, key)
        decision = idempotency.replay_decision(record.request_hash if record else None, fingerprint)
        if decision == "conflict":
            raise ApiError(409, "idempotency_conflict", f"{HEADER} {key!r} was used for a different request")
        if decision == "replay":
            return record.response_body, record.response_status, {"Idempotent-Replayed": "true"}
    return None


def once(key: str, fingerprint: str, place: Callable[[UnitOfWork], dict]):
    """``place(uow)``'s answer the first time ``key`` is used; the stored answer afterwards."""
    try:
        with unit_of_work() as uow:
            if service.find_idempotent(uow.session, key) is None:  # a racing twin may have won
                return place(uow)
    except IntegrityError:
        pass  # PostgreSQL: the twin inserted the same key first
    replay = replayed(key, fingerprint)
    if replay:
        return replay
    raise ApiError(409, "idempotency_conflict", "the request raced another with the same key")
