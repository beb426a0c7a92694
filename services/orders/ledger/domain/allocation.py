"""Serial allocation: which serials a retirement takes from a project's issued blocks.

Serials are taken in order from the lowest block with serials left, so an order gets
one contiguous range whenever a single block can hold it and several ranges only when
it spans blocks. The caller holds the project's lock; this module only does the maths.
"""
from __future__ import annotations

from dataclasses import dataclass


class InsufficientSerials(Exception):
    """The blocks hold fewer unretired serials than requested."""


@dataclass(frozen=True)
class BlockCursor:
    block_id: int
    next_serial: int  # first serial not yet retired
    last: int         # last serial of the block (inclusive)

    @property
    def remaining(self) -> int:
        return self.last - self.next_serial + 1


@dataclass(frozen=True)
class SerialRange:
    block_id: int
    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1


def allocate(blocks: list[BlockCursor], quantity: int) -> list[SerialRange]:
    """Ranges covering exactly ``quantity`` serials, lowest serials first."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    ranges: list[SerialRange] = []
    needed = quantity
    for block in sorted(blocks, key=lambda b: b.next_serial):
        if needed == 0:
            break
        if block.remaining <= 0:
            continue
        take = min(block.remaining, needed)
        ranges.append(SerialRange(block.block_id, block.next_serial, block.next_serial + take - 1))
        needed -= take
    if needed:
        raise InsufficientSerials(f"{quantity} kg requested, {quantity - needed} kg of serials left")
    return _merge_adjacent(ranges)


def _merge_adjacent(ranges: list[SerialRange]) -> list[SerialRange]:
    """Blocks issued back to back (…-100, 101-…) yield one range, not two."""
    merged: list[SerialRange] = []
    for r in ranges:
        if merged and merged[-1].last + 1 == r.first:
            merged[-1] = SerialRange(merged[-1].block_id, merged[-1].first, r.last)
        else:
            merged.append(r)
    return merged


def format_range(project_code: str, vintage: int, first: int, last: int) -> str:
    """docs/contract.md §3: ``{project code}-{vintage}:{first:09d}-{last:09d}``."""
    return f"{project_code}-{vintage}:{first:09d}-{last:09d}"


def ranges_overlap(a_first: int, a_last: int, b_first: int, b_last: int) -> bool:
    return a_first <= b_last and b_first <= a_last
