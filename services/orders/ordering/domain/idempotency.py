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


def same_estimate_decision(pending_project_id: str, pending_quantity_kg: int, pending_expired: bool,
                           project_id: str, quantity_kg: int) -> str:
    """What a new order for an estimate does to the participant's pending order of the same
    estimate (a guest who went back from the pay page and submitted again, with a new key):
    ``reuse`` it when it is still payable and asks the same (project, kilograms), so the
    kilograms are held once; ``replace`` it otherwise (another project, another quantity, or
    its payment window is over): it is cancelled, its kilograms released, a new one placed."""
    if pending_expired or pending_project_id != project_id or pending_quantity_kg != quantity_kg:
        return "replace"
    return "reuse"
