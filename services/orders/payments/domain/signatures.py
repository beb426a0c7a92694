"""Signed payment-provider webhooks: ``HMAC-SHA256(secret, "<timestamp>.<raw body>")``.

The signature travels as ``t=<unix seconds>,v1=<hex digest>`` (the same layout as the
platform's own outgoing webhooks, docs/contract.md §5). Signing the timestamp with the body lets the
receiver refuse a captured call replayed later: outside the tolerance it is stale, and
inside it the provider's event id (stored once) makes it change nothing.
"""
from __future__ import annotations

import hashlib
import hmac

SCHEME = "v1"


class SignatureError(Exception):
    """The call is not authentic; ``code`` names why (for the error body)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def header_value(secret: str, timestamp: int, body: bytes) -> str:
    """What a provider (or a test) sends in the signature header."""
    return f"t={timestamp},{SCHEME}={sign(secret, timestamp, body)}"


def parse_header(value: str | None) -> tuple[int, list[str]]:
    """``(timestamp, [signatures])`` from ``t=…,v1=…[,v1=…]``; several ``v1`` allow a
    provider to sign with an old and a new secret while it rotates them."""
    if not value:
        raise SignatureError("signature_missing", "the webhook call carries no signature")
    timestamp, signatures = None, []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t" and item.isdigit() and len(item) <= 12:
            timestamp = int(item)
        elif key == SCHEME and item:
            signatures.append(item.lower())
    if timestamp is None or not signatures:
        raise SignatureError("signature_missing", f"the signature must read t=<unix seconds>,{SCHEME}=<hex>")
    return timestamp, signatures


def verify(secret: str, header: str | None, body: bytes, now: float, tolerance_s: int) -> int:
    """The signed timestamp when ``header`` authenticates ``body``; raises otherwise.

    The signature is checked before the clock so an unauthenticated caller learns
    nothing about the tolerance. Clocks may disagree either way, hence ``abs``.
    """
    timestamp, signatures = parse_header(header)
    expected = sign(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("invalid_signature", "the webhook signature does not match the body")
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError("stale_signature",
                             f"the signature timestamp is more than {tolerance_s} s from the server's clock")
    return timestamp
