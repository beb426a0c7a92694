"""Great-circle distances between airports (IATA codes, coordinates from ``airportsdata``)."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import airportsdata

# Mean Earth radius (IUGG), the radius the factor methodology prescribes for haversine.
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Airport:
    code: str
    name: str
    city: str
    country: str
    lat: float
    lon: float


@functools.cache
def _airports_by_iata() -> dict[str, dict]:
    return airportsdata.load("IATA")


def airport(code: str) -> Airport | None:
    """The airport with IATA ``code`` (case-insensitive), or None when unknown."""
    row = _airports_by_iata().get(code.strip().upper()) if isinstance(code, str) else None
    if row is None:
        return None
    return Airport(row["iata"], row["name"], row["city"], row["country"], float(row["lat"]),
                   float(row["lon"]))


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def airport_distance_km(a: Airport, b: Airport) -> float:
    return haversine_km(a.lat, a.lon, b.lat, b.lon)
