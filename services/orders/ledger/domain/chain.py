"""The public hash chain of retirements.

Each entry stores ``prev_hash`` and ``hash = sha256(prev_hash + canonical JSON of its
body)``; anyone can recompute the chain from the published entries. The body is the
published entry without ``seq``, ``prev_hash`` and ``hash``.
"""
from __future__ import annotations

import hashlib
import json
from typing import Iterable

GENESIS_HASH = "0" * 64
CHAIN_FIELDS = ("seq", "prev_hash", "hash")  # published beside the body, not hashed

# Published with every ledger page so the chain can be checked without reading our code.
VERIFICATION = {
    "algorithm": "sha256",
    "body": "the entry without seq, prev_hash and hash",
    "canonical_json": "the body as JSON with keys sorted, separators ',' and ':' (no white space), "
                      "non-ASCII characters unescaped, encoded as UTF-8",
    "hash": "hash = lowercase hex of sha256(prev_hash + canonical_json(body)); prev_hash is the hash of "
            "the entry before it in the whole ledger (seq - 1), also when the list is filtered by project",
    "genesis_prev_hash": GENESIS_HASH,
}

CSV_COLUMNS = ("seq", "order_id", "project_id", "project_code", "registry", "vintage", "quantity_kg",
               "serial_ranges", "retired_at", "prev_hash", "hash", "canonical_body")


def canonical_json(body: dict) -> str:
    """Sorted keys, no insignificant white space, UTF-8 kept: one text per body."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def body_of(published: dict) -> dict:
    """The hashed body of a published entry (JSON from ``GET /api/v1/ledger``)."""
    return {k: v for k, v in published.items() if k not in CHAIN_FIELDS}


def csv_row(seq: int, prev_hash: str, stored_hash: str, body: dict) -> list:
    """One line of the auditors' CSV: the body's fields for reading, and ``canonical_body``
    (the exact hashed text), so ``sha256(prev_hash + canonical_body)`` can be checked
    with any tool."""
    return [seq, body.get("order_id"), body.get("project_id"), body.get("project_code"), body.get("registry"),
            body.get("vintage"), body.get("quantity_kg"), " ".join(body.get("serial_ranges", [])),
            body.get("retired_at"), prev_hash, stored_hash, canonical_json(body)]


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
