"""The airport search's index, built once per process: every airport of ``airportsdata``
with an IATA code, with the Chinese names of ``assets/airports_zh.csv`` (its sources:
``assets/airports_zh.md``). No database: the data ships with the code."""
from __future__ import annotations

import csv
import functools
from pathlib import Path

import airportsdata

from .domain.airports import DEFAULT_LIMIT, AirportEntry, AirportIndex

CHINESE_NAMES_CSV = Path(__file__).parent / "assets" / "airports_zh.csv"
CHINESE_NAMES_SOURCES = Path(__file__).parent / "assets" / "airports_zh.md"
CHINESE_NAMES_COLUMNS = ["iata", "icao", "name_zh", "city_zh", "source"]


def chinese_names(path: Path = CHINESE_NAMES_CSV) -> list[dict[str, str]]:
    """The rows of the Chinese names file, as written."""
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames != CHINESE_NAMES_COLUMNS:
            raise ValueError(f"{path.name}: columns must be {CHINESE_NAMES_COLUMNS}, not {reader.fieldnames}")
        return list(reader)


@functools.cache
def airport_index() -> AirportIndex:
    """Every airport with an IATA code; the ones with a Chinese name (airports with
    scheduled passenger service) ranked before small fields."""
    chinese = {row["iata"]: row for row in chinese_names()}
    entries = []
    for code, row in airportsdata.load("IATA").items():
        named = chinese.get(code)
        entries.append(AirportEntry(
            iata=code, name=row["name"], city=row["city"],
            name_zh=named["name_zh"] if named else None,
            city_zh=named["city_zh"] if named else None,
            country=row["country"], scheduled=named is not None))
    return AirportIndex(entries)


def search(query: str, limit: int = DEFAULT_LIMIT) -> list[dict]:
    return [entry.as_dict() for entry in airport_index().search(query, limit)]
