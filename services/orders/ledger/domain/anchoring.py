"""Registry anchoring: which retired serials a registry cancellation record covers.

An operator records a cancellation made at the project's registry for whole tonnes; it
covers the next ``tonnes × 1000`` of the project's retired serials, in serial order,
that no earlier record covers. Records are kept as serial ranges (not positions in the
retired sequence), so a block issued later with lower serials never shifts what an
earlier record covers. The caller holds the project's lock; this module only does the
maths. Ranges are inclusive ``(first, last)`` pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

KG_PER_TONNE = 1000


class NotEnoughRetired(Exception):
    """Fewer retired, unanchored kilograms than the record would cover."""

    def __init__(self, requested_kg: int, unanchored_kg: int):
        super().__init__(f"{requested_kg} kg requested, {unanchored_kg} kg retired and not anchored")
        self.requested_kg = requested_kg
        self.unanchored_kg = unanchored_kg


@dataclass(frozen=True)
class AnchoredRange:
    record_id: str
    first: int
    last: int


def _normalised(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with overlapping or adjacent ranges merged."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if last < first:
            raise ValueError(f"range {first}-{last} is empty")
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def unanchored(retired: list[tuple[int, int]], anchored: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The retired serials no record covers, as sorted ranges."""
    holes = _normalised(anchored)
    free: list[tuple[int, int]] = []
    for first, last in _normalised(retired):
        cursor = first
        for a_first, a_last in holes:
            if a_last < cursor or a_first > last:
                continue
            if a_first > cursor:
                free.append((cursor, a_first - 1))
            cursor = max(cursor, a_last + 1)
            if cursor > last:
                break
        if cursor <= last:
            free.append((cursor, last))
    return free


def unanchored_kg(retired: list[tuple[int, int]], anchored: list[tuple[int, int]]) -> int:
    return sum(last - first + 1 for first, last in unanchored(retired, anchored))


def next_ranges(retired: list[tuple[int, int]], anchored: list[tuple[int, int]],
                tonnes: int) -> list[tuple[int, int]]:
    """The ranges a new record of ``tonnes`` covers: the lowest retired, unanchored
    serials, ``tonnes × 1000`` of them."""
    if tonnes <= 0:
        raise ValueError("tonnes must be positive")
    needed = tonnes * KG_PER_TONNE
    free = unanchored(retired, anchored)
    available = sum(last - first + 1 for first, last in free)
    if available < needed:
        raise NotEnoughRetired(needed, available)
    taken: list[tuple[int, int]] = []
    for first, last in free:
        take = min(needed, last - first + 1)
        taken.append((first, first + take - 1))
        needed -= take
        if needed == 0:
            break
    return taken


def overlap(a_first: int, a_last: int, b_first: int, b_last: int) -> int:
    return max(0, min(a_last, b_last) - max(a_first, b_first) + 1)


def coverage(ranges: list[tuple[int, int]], records: list[AnchoredRange]) -> dict[str, int]:
    """Kilograms of ``ranges`` (a retirement's serials) each record covers, by record id,
    only records that cover at least one kilogram, in order of their lowest serial."""
    covered: dict[str, int] = {}
    for record in sorted(records, key=lambda r: (r.first, r.record_id)):
        kg = sum(overlap(first, last, record.first, record.last) for first, last in ranges)
        if kg:
            covered[record.record_id] = covered.get(record.record_id, 0) + kg
    return covered
