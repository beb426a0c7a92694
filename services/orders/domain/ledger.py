"""The public hash chain of retirements.

Each entry stores ``prev_hash`` and ``hash = sha256(prev_hash + canonical JSON of its
body)``; anyone can recompute the chain from the published entries.
"""
from __future__ import annotations

import hashlib
import json
from typing import Iterable

GENESIS_HASH = "0" * 64


def canonical_json(body: dict) -> str:
    """Sorted keys, no insignificant white space, UTF-8 kept: one text per body."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, body: dict) -> str:
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def first_broken(entries: Iterable[tuple[int, str, str, dict]]) -> int | None:
    """Sequence number of the first entry whose links do not hold, or None.

    ``entries`` are ``(seq, prev_hash, hash, body)`` in chain order.
    """
    expected_prev = GENESIS_HASH
    for seq, prev_hash, stored_hash, body in entries:
        if prev_hash != expected_prev or entry_hash(prev_hash, body) != stored_hash:
            return seq
        expected_prev = stored_hash
    return None
