"""Emission factor sets: immutable, versioned, every value with its published source.

A factor set is read from a data file (``calculator/factors/<version>.json``), stored in
the calculator's database, and referenced by version from every estimate, so an estimate
can always be explained with the exact numbers it used.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Iterator, Mapping

VERSION_RE = re.compile(r"^\d{4}\.\d+$")

# Keys the calculator reads; a factor set missing one is rejected when it is loaded,
# not halfway through somebody's estimate.
REQUIRED_KEYS = (
    "flight.distance_uplift", "flight.short_haul_min_km", "flight.long_haul_min_km",
    *(f"flight.{band}.{cabin}" for band in ("domestic", "short_haul", "long_haul")
      for cabin in ("economy", "premium_economy", "business", "first")),
    "rail.high_speed", "rail.conventional", "metro", "bus", "taxi",
    "car.petrol", "car.diesel", "car.hybrid", "car.electric_kwh_per_km",
    "electricity", "natural_gas", "meal.meat", "meal.vegetarian", "meal.meals_per_day",
    "hotel.fallback", "benchmark.per_capita",
)


class FactorSetError(ValueError):
    """A factor file that cannot be used as it stands."""


@dataclass(frozen=True)
class Factor:
    key: str
    value: Decimal
    unit: str
    publisher: str
    document: str
    table: str
    year: int
    citation: str
    url: str | None = None
    note: str | None = None

    @property
    def source(self) -> str:
        """One line naming the publication and the row the value comes from."""
        return f"{self.citation} — {self.table}"


@dataclass(frozen=True)
class FactorSet:
    version: str
    title: str
    description: str
    factors: Mapping[str, Factor]

    def __getitem__(self, key: str) -> Factor:
        return self.factors[key]

    def __contains__(self, key: str) -> bool:
        return key in self.factors

    def __iter__(self) -> Iterator[Factor]:
        return iter(self.factors.values())

    def hotel(self, country: str) -> Factor:
        """The room-night factor of ``country``, or the documented fallback."""
        return self.factors.get(f"hotel.{country.upper()}") or self.factors["hotel.fallback"]


def version_key(version: str) -> tuple[int, int]:
    """Sort key of versions like ``2025.1`` (numeric, so 2025.10 follows 2025.9)."""
    year, _, release = version.partition(".")
    return int(year), int(release)


def parse_factor_file(data: Mapping) -> FactorSet:
    """Validate a factor file's content (JSON already parsed with Decimal floats)."""
    try:
        version = data["version"]
        sources = data["sources"]
        entries = data["factors"]
    except (KeyError, TypeError) as exc:
        raise FactorSetError(f"factor file lacks {exc}") from exc
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise FactorSetError(f"version must look like 2025.1, got {version!r}")
    factors: dict[str, Factor] = {}
    for entry in entries:
        key = entry.get("key")
        if not key or key in factors:
            raise FactorSetError(f"missing or duplicate factor key {key!r}")
        source = sources.get(entry.get("source"))
        if source is None:
            raise FactorSetError(f"{key}: unknown source {entry.get('source')!r}")
        try:
            value = Decimal(str(entry["value"]))
        except (KeyError, InvalidOperation) as exc:
            raise FactorSetError(f"{key}: value is not a number") from exc
        if not value.is_finite() or value < 0:
            raise FactorSetError(f"{key}: value must be a finite non-negative number")
        factors[key] = Factor(
            key=key, value=value, unit=entry["unit"],
            publisher=source["publisher"], document=source["document"], table=entry["table"],
            year=int(entry.get("year", source["year"])), citation=source["citation"],
            url=entry.get("url", source.get("url")), note=entry.get("note"),
        )
    missing = [key for key in REQUIRED_KEYS if key not in factors]
    if missing:
        raise FactorSetError(f"factor set {version} lacks {', '.join(missing)}")
    return FactorSet(version=version, title=data.get("title", version),
                     description=data.get("description", ""), factors=factors)
