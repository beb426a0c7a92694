"""Verification codes: a random token plus a short HMAC, safe to print in a QR code.

A code reads ``{token}.{signature}`` (29 URL-safe characters). The token is the
certificate's random ``verify_token``; the signature is a SHA-256 HMAC truncated to
96 bits, which is far beyond what an attacker can guess through an HTTP endpoint and
keeps the QR code small. Keys rotate: the first key signs, every key verifies, so
certificates printed under an old key keep verifying while it stays configured.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from itsdangerous import Signer
from itsdangerous.signer import SigningAlgorithm

SALT = "diandian.certificate.verify"
SIGNATURE_BYTES = 12
TOKEN_BYTES = 9
MAX_CODE_LENGTH = 100


class TruncatedHmacSha256(SigningAlgorithm):
    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.new(key, value, hashlib.sha256).digest()[:SIGNATURE_BYTES]


def new_verify_token() -> str:
    """12 URL-safe characters (72 random bits), never containing the separator '.'."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def parse_keys(value: str | None) -> list[str]:
    """``"new,old"`` → ``["new", "old"]`` (blank entries dropped)."""
    return [key.strip() for key in (value or "").split(",") if key.strip()]


class VerificationCodes:
    """Signs tokens with ``keys[0]`` and accepts a code signed by any of ``keys``, in its one
    canonical spelling only.

    itsdangerous decodes the signature's base64 leniently (padding, ``+`` for ``-``, stray
    characters are skipped), so ``unsign`` would accept many spellings of one code. A code
    verifies here only when it is exactly what one of the keys signs for its token: a public
    verification URL has one form, and an altered one is unknown (404), never valid.
    """

    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._signers = [Signer(key, salt=SALT, sep=".", key_derivation="hmac",
                                digest_method=hashlib.sha256, algorithm=TruncatedHmacSha256())
                         for key in keys]

    def code_for(self, token: str) -> str:
        return self._signers[0].sign(token).decode("ascii")

    def token_of(self, code: str) -> str | None:
        """The token a genuine code carries; None for an altered, foreign, malformed or
        non-canonical code."""
        if not isinstance(code, str) or not code or len(code) > MAX_CODE_LENGTH or not code.isascii():
            return None
        token, separator, _signature = code.rpartition(".")
        if not separator or not token:
            return None
        for signer in self._signers:
            if hmac.compare_digest(signer.sign(token).decode("ascii"), code):
                return token
        return None
