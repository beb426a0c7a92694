"""Emission factor sets: immutable, versioned, every value with its published source.

A factor set is read from a data file (``calculator/factors/<version>.json``), stored in
the calculator's database, and referenced by version from every estimate, so an estimate
can always be explained with the exact numbers it used.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Iterator, Mapping

VERSION_RE = re.compile(r"^\d{4}\.\d+$")

_UK_FLIGHTS = tuple(f"flight.{band}.{cabin}" for band in ("domestic", "short_haul", "long_haul")
                    for cabin in ("economy", "premium_economy", "business", "first"))
_INTERNATIONAL_FLIGHTS = tuple(f"flight.international.{cabin}"
                               for cabin in ("economy", "premium_economy", "business", "first"))

# Keys the calculator reads; a factor set missing one is rejected when it is loaded,
# not halfway through somebody's estimate. Two methods have been published: "band" (set
# 2025.1: every flight on the UK rows by distance, rail on UK national rail) and
# "geography" (from 2025.2: UK rows only for flights touching the UK, DESNZ's non-UK rows
# otherwise, every flight row also without radiative forcing, a Chinese train's energy).
REQUIRED_KEYS = (
    "flight.distance_uplift", "flight.long_haul_min_km", *_UK_FLIGHTS,
    "rail.conventional", "metro", "bus", "taxi",
    "car.petrol", "car.diesel", "car.hybrid", "car.electric_kwh_per_km",
    "electricity", "natural_gas", "meal.meat", "meal.vegetarian", "meal.meals_per_day",
    "hotel.fallback", "benchmark.per_capita",
)
METHOD_KEYS = {
    "band": ("flight.short_haul_min_km", "rail.high_speed"),
    "geography": (*_INTERNATIONAL_FLIGHTS,
                  *(f"{key}.without_rf" for key in (*_UK_FLIGHTS, *_INTERNATIONAL_FLIGHTS)),
                  "rail.high_speed.kwh_per_train_km", "rail.high_speed.seats",
                  "rail.high_speed.load_factor"),
}

# Provinces MEE publishes no provincial factor for, and the regional grid that stands in.
REGIONAL_GRID = {"CN-XZ": "southwest"}


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
    edition: str | None = None

    @property
    def source(self) -> str:
        """One line naming the publication and the row the value comes from."""
        return f"{self.citation} — {self.table}"

    @property
    def gases(self) -> str | None:
        """What the unit counts: "CO2e" (CO2, CH4, N2O... as CO2 equivalents), "CO2" (carbon
        dioxide only, like China's grid and fuel factors), or None for a parameter that is
        not an emission (a distance, a ratio, kWh per km)."""
        if "CO2e" in self.unit:
            return "CO2e"
        if re.search(r"\bCO2\b", self.unit):
            return "CO2"
        return None


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

    @property
    def method(self) -> str:
        """"geography" for sets with DESNZ's non-UK flight rows (2025.2 on), else "band"."""
        return "geography" if "flight.international.economy" in self.factors else "band"

    def hotel(self, country: str) -> Factor:
        """The room-night factor of ``country``, or the documented fallback."""
        return self.factors.get(f"hotel.{country.upper()}") or self.factors["hotel.fallback"]


def grid_factor(factor_set: FactorSet, province: str | None) -> Factor:
    """The electricity factor of ``province`` (ISO 3166-2:CN, like CN-SC): its provincial
    factor, else its regional grid's (Tibet), else the national one; None is national.
    A province the set has no factor for gets the national factor with a note saying so,
    so a line never claims a provincial figure it does not have."""
    national = factor_set["electricity"]
    if not province:
        return national
    own = factor_set.factors.get(f"electricity.{province}")
    if own is not None:
        return own
    region = REGIONAL_GRID.get(province)
    if region and f"electricity.region.{region}" in factor_set:
        return factor_set[f"electricity.region.{region}"]
    return replace(national, note=f"Factor set {factor_set.version} has no electricity factor for "
                                  f"{province}: the national average is used.")


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
            edition=entry.get("edition", source.get("edition")),
        )
    method = "geography" if "flight.international.economy" in factors else "band"
    missing = [key for key in (*REQUIRED_KEYS, *METHOD_KEYS[method]) if key not in factors]
    if missing:
        raise FactorSetError(f"factor set {version} lacks {', '.join(missing)}")
    return FactorSet(version=version, title=data.get("title", version),
                     description=data.get("description", ""), factors=factors)
