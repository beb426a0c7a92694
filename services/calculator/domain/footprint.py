"""An event's footprint for its organisers: who estimated, and how much in total, with
flights with and without radiative forcing (only flights differ)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, Mapping

from .calculator import CATEGORIES, GRAM


@dataclass(frozen=True)
class EstimateSummary:
    estimate_id: str
    participant_id: str | None
    created_at: datetime
    total_g: int
    categories_g: Mapping[str, int]
    # None: the estimate's flights have no recorded figure without radiative forcing.
    total_without_rf_g: int | None = None
    categories_without_rf_g: Mapping[str, int] | None = None


@dataclass(frozen=True)
class Footprint:
    participants: int
    estimates: int
    total_kg: Decimal
    average_kg: Decimal
    categories: Mapping[str, Decimal]
    # None when a counted estimate's flights have no figure without radiative forcing: a
    # partial sum would pass for the whole event's.
    total_kg_without_rf: Decimal | None = None
    categories_without_rf: Mapping[str, Decimal] | None = None
    without_rf_unknown: int = 0


def grams_to_kg(grams: int) -> Decimal:
    return (Decimal(grams) / 1000).quantize(GRAM)


def scene_footprint(summaries: Iterable[EstimateSummary]) -> Footprint:
    """Each participant counts once, with their latest estimate (they may refine it);
    estimates without a participant id are separate anonymous participants."""
    latest: dict[str, EstimateSummary] = {}
    anonymous: list[EstimateSummary] = []
    count = 0
    for summary in summaries:
        count += 1
        if summary.participant_id is None:
            anonymous.append(summary)
            continue
        current = latest.get(summary.participant_id)
        if current is None or (summary.created_at, summary.estimate_id) > (current.created_at,
                                                                           current.estimate_id):
            latest[summary.participant_id] = summary
    counted = [*latest.values(), *anonymous]
    total_g = sum(s.total_g for s in counted)
    categories_g = {c: sum(s.categories_g.get(c, 0) for s in counted) for c in CATEGORIES}
    average = (Decimal(total_g) / 1000 / len(counted)).quantize(GRAM, rounding=ROUND_HALF_UP) \
        if counted else Decimal("0.000")
    unknown = sum(1 for s in counted if s.total_without_rf_g is None)
    total_without_rf = categories_without_rf = None
    if not unknown:
        total_without_rf = grams_to_kg(sum(s.total_without_rf_g for s in counted))
        categories_without_rf = {c: grams_to_kg(sum((s.categories_without_rf_g or {}).get(c, 0)
                                                    for s in counted)) for c in CATEGORIES}
    return Footprint(participants=len(counted), estimates=count, total_kg=grams_to_kg(total_g),
                     average_kg=average,
                     categories={c: grams_to_kg(g) for c, g in categories_g.items()},
                     total_kg_without_rf=total_without_rf, categories_without_rf=categories_without_rf,
                     without_rf_unknown=unknown)
