"""Sorted-set scores: exact grams, ties broken by who reached the total first.

A Redis score is an IEEE double (53-bit significand). We store

    score = grams + earliness' / 2**32

- ``grams`` (the integer part) is the participant's exact total in grams, i.e. kilograms
  with three decimals. Exact for any total below 2**53 g (about 9 × 10**12 kg).
- ``earliness`` is ``2**32 - 1 - t`` where ``t`` is the whole seconds from ``TIE_EPOCH``
  (2020-01-01 UTC) to the moment the participant reached the total, clamped to
  [0, 2**32 - 1] (until the year 2156). Reaching a total earlier gives a larger fraction,
  so on equal grams the earlier participant sorts higher in ZREVRANGE.
- A total with b significant bits leaves 53 - b fraction bits, so ``earliness'`` is
  ``earliness`` with its lowest ``max(0, b - 21)`` bits cleared. The tie-break time is
  therefore exact to the second for totals below 2**21 g (about 2,097 kg), to 2 s below
  4,194 kg, ... to 512 s around 1,000 t: the bigger (and rarer) the total, the coarser
  the tie-break, never the kilograms. Totals that still tie fall back to Redis' member
  order (reverse lexicographic).

Truncation is monotone and nested (a larger total clears at least the same bits), so
adding an order to a stored score — new total, min of the two earlinesses, truncated at
the new total's precision — gives exactly the score computed from scratch from the sum
and the latest contribution time. The Lua scripts in ``ranking.store`` mirror
:func:`encode` and :func:`decode` and rely on that.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

TIE_EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)
TICK_BITS = 32
TICK_SPAN = 2 ** TICK_BITS
SIGNIFICAND_BITS = 53
MAX_TOTAL_GRAMS = 2 ** SIGNIFICAND_BITS - 1


def earliness(reached_at: datetime) -> int:
    """``2**32 - 1 - t`` for the whole seconds ``t`` since ``TIE_EPOCH``, clamped."""
    delta = reached_at - TIE_EPOCH
    tick = delta.days * 86_400 + delta.seconds
    return TICK_SPAN - 1 - min(max(tick, 0), TICK_SPAN - 1)


def encode(grams: int, earliness_value: int) -> float:
    if not 0 < grams <= MAX_TOTAL_GRAMS:
        raise ValueError(f"a board total must be between 1 and {MAX_TOTAL_GRAMS} grams, got {grams}")
    if not 0 <= earliness_value < TICK_SPAN:
        raise ValueError(f"earliness out of range: {earliness_value}")
    cleared_bits = max(0, grams.bit_length() - (SIGNIFICAND_BITS - TICK_BITS))
    kept = (earliness_value >> cleared_bits) << cleared_bits
    return grams + kept / TICK_SPAN


def decode(score: float) -> tuple[int, int]:
    """``(grams, earliness')`` of a score made by :func:`encode`."""
    grams = math.floor(score)
    return grams, int((score - grams) * TICK_SPAN)


def score_of(grams: int, reached_at: datetime) -> float:
    return encode(grams, earliness(reached_at))


def grams_of(score: float) -> int:
    return math.floor(score)
