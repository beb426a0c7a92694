"""Anonymous guests: a signed cookie gives each browser a stable participant id.

The id is random (no personal data), signed with ``GATEWAY_SECRET_KEY`` (itsdangerous) so
a guest cannot claim someone else's place on a leaderboard by editing the cookie. The
services learn who the guest is only from the gateway: every forwarded request of a
browser with the cookie carries a participant assertion (diandian_common.auth) naming its
id and address; placing an order or an estimate gives a browser without one its id first.
"""
from __future__ import annotations

import re
import secrets

from flask import Request, Response, g, request
from itsdangerous import BadSignature, URLSafeSerializer

from diandian_common import config
from diandian_common.auth import DEVELOPMENT_GATEWAY_SECRET, Guest

COOKIE_NAME = "dd_participant"
COOKIE_MAX_AGE = 400 * 24 * 3600  # browsers cap cookies at 400 days
# The API writes that make a guest a participant: a browser without a cookie gets one here.
JOINING_WRITES = (re.compile(r"/api/v1/orders"), re.compile(r"/api/v1/estimates"))


def secret_key() -> str:
    return config.env("GATEWAY_SECRET_KEY", DEVELOPMENT_GATEWAY_SECRET)


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(secret_key(), salt="participant")


def participant_id_from_request(req: Request) -> str | None:
    """The verified participant id of the request's cookie, or None (absent or forged)."""
    raw = req.cookies.get(COOKIE_NAME)
    if not raw:
        return None
    try:
        value = _serializer().loads(raw)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


def current_participant_id() -> str:
    """This browser's participant id, minting one (sent back by :func:`set_cookie`)."""
    if "participant_id" not in g:
        existing = participant_id_from_request(request)
        g.participant_id = existing or f"p_{secrets.token_urlsafe(12)}"
        g.participant_is_new = existing is None
    return g.participant_id


def request_guest() -> Guest | None:
    """The guest to vouch for on this request: the cookie's participant, minted for the
    writes that join a guest (placing an order or an estimate); None otherwise. (The rate
    limiter keys a browser without a valid cookie by its address, minted id or not.)"""
    joins = request.method == "POST" and any(p.fullmatch(request.path) for p in JOINING_WRITES)
    participant_id = current_participant_id() if joins else participant_id_from_request(request)
    return Guest(participant_id, request.remote_addr or "") if participant_id else None


def give_cookie(response: Response, participant_id: str) -> Response:
    """``response`` makes its browser the guest ``participant_id`` (a new guest, or one
    moving to this device from /me)."""
    response.set_cookie(COOKIE_NAME, _serializer().dumps(participant_id), max_age=COOKIE_MAX_AGE,
                        httponly=True, samesite="Lax", secure=request.is_secure)
    return response


def set_cookie(response: Response) -> Response:
    """After-request hook: persist a freshly minted participant id."""
    if g.get("participant_is_new"):
        give_cookie(response, g.participant_id)
    return response
