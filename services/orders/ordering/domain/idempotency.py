"""``Idempotency-Key`` semantics, as payment APIs have them."""
from __future__ import annotations

import hashlib
import json

MAX_KEY_LENGTH = 255


def request_fingerprint(body: dict) -> str:
    """Hash of the request as understood (canonical JSON), to spot a reused key."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def replay_decision(stored_fingerprint: str | None, fingerprint: str) -> str:
    """``new`` (never seen), ``replay`` (same request again) or ``conflict`` (other body)."""
    if stored_fingerprint is None:
        return "new"
    return "replay" if stored_fingerprint == fingerprint else "conflict"
