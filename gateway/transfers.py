"""Moving a guest to another device: a one-time code and link (docs/contract.md §1, /me).

A guest is only their signed participant cookie, so a second phone can see their
certificates only by getting the same cookie. On /me the guest asks for a move: the
gateway keeps, for ``TRANSFER_TTL`` (10 minutes), a short code to type and a link to open
(also as a QR code); either, used once on the other device, gives it the same cookie. The
first device keeps its cookie. The table keeps keyed hashes (HMAC with the gateway's
secret) of the code and the link's token, never them, and the claim is one UPDATE that
only an unused, unexpired row matches, so two devices claiming at once cannot both win.
Typed codes are rate-limited per address (pages_me), which with 31⁸ codes alive for ten
minutes makes guessing one hopeless.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError

from diandian_common.db import Database

from .models import DeviceTransfer

# No 0/O, 1/I/L: a code read off one screen and typed on another must not be misread.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
CODE_GROUP = 4
TRANSFER_TTL = timedelta(minutes=10)
TOKEN_BYTES = 24
MAX_TOKEN_LENGTH = 64   # a token is 32 characters; anything much longer is not one
MAX_CODE_INPUT = 32     # what a code field may hold, separators and spaces included
CREATE_ATTEMPTS = 3     # a new code colliding with a live one is drawn again


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def grouped(code: str) -> str:
    """``ABCD2345`` as it is shown: ``ABCD-2345``."""
    return "-".join(code[i:i + CODE_GROUP] for i in range(0, len(code), CODE_GROUP))


def normalized_code(typed: str) -> str | None:
    """The code a guest typed (any case, with spaces or dashes), or None when it cannot be one."""
    if not isinstance(typed, str) or len(typed) > MAX_CODE_INPUT:
        return None
    code = "".join(c for c in typed.upper() if c not in " -\t")
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        return None
    return code


def plausible_token(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH and all(
        c.isascii() and (c.isalnum() or c in "-_") for c in token)


@dataclass(frozen=True)
class Transfer:
    """A move just created: what the guest's first device shows (never stored as such)."""

    code: str
    token: str
    expires_at: datetime


class Transfers:
    """The one-time moves in the gateway's database."""

    def __init__(self, database: Database, secret: str, ttl: timedelta = TRANSFER_TTL):
        self.database = database
        self.secret = secret.encode()
        self.ttl = ttl

    def _hash(self, kind: str, value: str) -> str:
        return hmac.new(self.secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def create(self, participant_id: str, now: datetime | None = None) -> Transfer:
        """A new move of ``participant_id``; spent and expired moves are cleared on the way."""
        now = now or datetime.now(UTC)
        attempts = CREATE_ATTEMPTS
        while True:
            transfer = Transfer(new_code(), secrets.token_urlsafe(TOKEN_BYTES), now + self.ttl)
            try:
                with self.database.transaction() as session:
                    session.execute(delete(DeviceTransfer).where(
                        or_(DeviceTransfer.expires_at <= now, DeviceTransfer.used_at.is_not(None))))
                    session.add(DeviceTransfer(
                        id=self._hash("token", transfer.token), code_hash=self._hash("code", transfer.code),
                        participant_id=participant_id, created_at=now, expires_at=transfer.expires_at))
                return transfer
            except IntegrityError:
                attempts -= 1
                if not attempts:
                    raise

    def claim_token(self, token: str, now: datetime | None = None) -> str | None:
        """The participant of the link's move, now spent; None if unknown, expired or used."""
        if not plausible_token(token):
            return None
        return self._claim(DeviceTransfer.id == self._hash("token", token), now)

    def claim_code(self, typed: str, now: datetime | None = None) -> str | None:
        """The participant of the typed code's move, now spent; None if wrong, expired or used."""
        code = normalized_code(typed)
        if code is None:
            return None
        return self._claim(DeviceTransfer.code_hash == self._hash("code", code), now)

    def is_live(self, token: str, now: datetime | None = None) -> bool:
        """Whether the link's move may still be claimed (for the confirmation page)."""
        if not plausible_token(token):
            return False
        now = now or datetime.now(UTC)
        with self.database.transaction() as session:
            row = session.get(DeviceTransfer, self._hash("token", token))
            return row is not None and row.used_at is None and row.expires_at > now

    def _claim(self, which, now: datetime | None) -> str | None:
        now = now or datetime.now(UTC)
        with self.database.transaction() as session:
            # One statement: of two claims at once, only one finds used_at still NULL.
            return session.execute(
                update(DeviceTransfer)
                .where(which, DeviceTransfer.used_at.is_(None), DeviceTransfer.expires_at > now)
                .values(used_at=now).returning(DeviceTransfer.participant_id)).scalar_one_or_none()
