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

from itsdangerous import BadSignature, Signer
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
    """Signs tokens with ``keys[0]`` and accepts a signature by any of ``keys``."""

    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("at least one signing key is needed")
        # itsdangerous signs with the *last* key and tries all of them when verifying.
        self._signer = Signer(list(reversed(keys)), salt=SALT, sep=".", key_derivation="hmac",
                              digest_method=hashlib.sha256, algorithm=TruncatedHmacSha256())

    def code_for(self, token: str) -> str:
        return self._signer.sign(token).decode("ascii")

    def token_of(self, code: str) -> str | None:
        """The token a genuine code carries; None for an altered, foreign or malformed code."""
        if not isinstance(code, str) or not code or len(code) > MAX_CODE_LENGTH or not code.isascii():
            return None
        try:
            return self._signer.unsign(code).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            return None
