"""Footprint arithmetic: activities × published factors → itemised kg CO2e.

Everything is Decimal. Each item's kg is rounded once, half-up to 3 decimals (grams), and
totals and category sums add the rounded items, so every figure a guest sees adds up.
Inputs are assumed validated (see ``calculator.schemas``); this module only computes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Mapping, Sequence

from .factors import Factor, FactorSet
from .geo import airport, airport_distance_km

KINDS = ("trip", "life")
ACTIVITY_TYPES = ("flight", "rail", "metro", "bus", "taxi", "car", "hotel", "electricity",
                  "natural_gas", "meal")
CABINS = ("economy", "premium_economy", "business", "first")
RAIL_CLASSES = ("high_speed", "conventional")
FUELS = ("petrol", "diesel", "hybrid", "electric")
DIETS = ("meat", "vegetarian")
FLIGHT_BANDS = ("domestic", "short_haul", "long_haul")

CATEGORIES = ("home_energy", "transport", "flights", "food", "accommodation")
CATEGORY_OF = {
    "flight": "flights", "rail": "transport", "metro": "transport", "bus": "transport",
    "taxi": "transport", "car": "transport", "hotel": "accommodation",
    "electricity": "home_energy", "natural_gas": "home_energy", "meal": "food",
}

# A life estimate lets each activity be given per day, week, month or year (the life page
# asks for monthly bills and weekly distances); it is scaled to a year.
PERIODS_PER_YEAR = {"day": 365, "week": 52, "month": 12, "year": 1}

GRAM = Decimal("0.001")


def round3(value: Decimal) -> Decimal:
    """Half-up to 3 decimals: grams of a kg figure, metres of a km one."""
    return value.quantize(GRAM, rounding=ROUND_HALF_UP)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def fmt(value) -> str:
    """A Decimal or int as plain text without exponent or trailing zeros (500, 0.11704)."""
    return format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)


def formula(terms: Sequence[str]) -> str:
    """Terms joined by ×, except those written as a division (``÷ 3 meals per day``)."""
    text = terms[0]
    for term in terms[1:]:
        text += f" {term}" if term.startswith("÷") else f" × {term}"
    return text


def to_decimal(value) -> Decimal:
    """User numbers arrive as int/float; ``str`` keeps the digits the user typed (and
    "+ 0" drops the sign of a negative zero)."""
    return (value if isinstance(value, Decimal) else Decimal(str(value))) + 0


class ActivityError(ValueError):
    """An activity this module cannot compute (the API validates before calling)."""


@dataclass(frozen=True)
class Item:
    type: str
    category: str
    kg: Decimal
    factor: Factor
    parameters: tuple[Factor, ...]
    details: Mapping[str, object]
    calculation: str


@dataclass(frozen=True)
class Benchmark:
    factor: Factor
    kg: Decimal
    ratio: Decimal
    difference_kg: Decimal


@dataclass(frozen=True)
class Estimate:
    kind: str
    factor_set: str
    items: tuple[Item, ...]
    total_kg: Decimal
    categories: Mapping[str, Decimal]
    benchmark: Benchmark | None = None


@dataclass
class _Line:
    """One activity's unrounded result, before period scaling and rounding."""
    kg: Decimal
    factor: Factor
    details: dict
    calculation: list[str]
    parameters: list[Factor] = field(default_factory=list)


def flight_band(distance_km: Decimal, factors: FactorSet) -> str:
    """DESNZ haul band by great-circle distance: [0, 500) domestic, [500, 3700) short, else long."""
    if distance_km < factors["flight.short_haul_min_km"].value:
        return "domestic"
    if distance_km < factors["flight.long_haul_min_km"].value:
        return "short_haul"
    return "long_haul"


def great_circle_km(activity: Mapping) -> Decimal:
    """``distance_km`` as given (taken as great-circle), else haversine between the airports."""
    if activity.get("distance_km") is not None:
        distance = to_decimal(activity["distance_km"])
    else:
        origin, destination = airport(activity["from"]), airport(activity["to"])
        if origin is None or destination is None:
            raise ActivityError("unknown airport code")
        distance = Decimal(repr(airport_distance_km(origin, destination)))
    return round3(distance)


def _flight(a: Mapping, fs: FactorSet) -> _Line:
    distance = great_circle_km(a)
    band = flight_band(distance, fs)
    cabin = a.get("cabin") or "economy"
    legs = 2 if a.get("round_trip") else 1
    passengers = int(a.get("passengers") or 1)
    factor, uplift = fs[f"flight.{band}.{cabin}"], fs["flight.distance_uplift"]
    details = {"distance_km": distance, "band": band, "cabin": cabin, "round_trip": legs == 2,
               "passengers": passengers}
    if a.get("from"):
        details = {"from": a["from"].upper(), "to": a["to"].upper(), **details}
    calculation = [f"{fmt(distance)} km great-circle", f"{fmt(uplift.value)} uplift",
                   f"{fmt(factor.value)} {factor.unit}"]
    if legs == 2:
        calculation.append("2 legs (round trip)")
    if passengers != 1:
        calculation.append(plural(passengers, "passenger"))
    return _Line(distance * uplift.value * factor.value * legs * passengers, factor, details,
                 calculation, [uplift])


def _per_km(key: str) -> Callable[[Mapping, FactorSet], _Line]:
    def line(a: Mapping, fs: FactorSet) -> _Line:
        distance, factor = to_decimal(a["distance_km"]), fs[key]
        return _Line(distance * factor.value, factor, {"distance_km": distance},
                     [f"{fmt(distance)} km", f"{fmt(factor.value)} {factor.unit}"])
    return line


def _rail(a: Mapping, fs: FactorSet) -> _Line:
    rail_class = a.get("class") or "high_speed"
    distance, factor = to_decimal(a["distance_km"]), fs[f"rail.{rail_class}"]
    return _Line(distance * factor.value, factor, {"distance_km": distance, "class": rail_class},
                 [f"{fmt(distance)} km", f"{fmt(factor.value)} {factor.unit}"])


def _car(a: Mapping, fs: FactorSet) -> _Line:
    """Per vehicle-km, shared by the people in the car."""
    distance = to_decimal(a["distance_km"])
    fuel = a.get("fuel") or "petrol"
    passengers = int(a.get("passengers") or 1)
    details = {"distance_km": distance, "fuel": fuel, "passengers": passengers}
    if fuel == "electric":
        consumption, grid = fs["car.electric_kwh_per_km"], fs["electricity"]
        kwh = distance * consumption.value
        details["kwh"] = round3(kwh)
        line = _Line(kwh * grid.value / passengers, grid, details,
                     [f"{fmt(distance)} km", f"{fmt(consumption.value)} {consumption.unit}",
                      f"{fmt(grid.value)} {grid.unit}"], [consumption])
    else:
        factor = fs[f"car.{fuel}"]
        line = _Line(distance * factor.value / passengers, factor, details,
                     [f"{fmt(distance)} km", f"{fmt(factor.value)} {factor.unit}"])
    if passengers != 1:
        line.calculation.append(f"÷ {passengers} people sharing the car")
    return line


def _hotel(a: Mapping, fs: FactorSet) -> _Line:
    nights, rooms = int(a["nights"]), int(a.get("rooms") or 1)
    country = (a.get("country") or "CN").upper()
    factor = fs.hotel(country)
    details = {"nights": nights, "rooms": rooms, "country": country, "room_nights": nights * rooms}
    return _Line(nights * rooms * factor.value, factor, details,
                 [plural(nights, "night"), plural(rooms, "room"),
                  f"{fmt(factor.value)} {factor.unit}"])


def _quantity(field_name: str, unit: str, key: str) -> Callable[[Mapping, FactorSet], _Line]:
    def line(a: Mapping, fs: FactorSet) -> _Line:
        quantity, factor = to_decimal(a[field_name]), fs[key]
        return _Line(quantity * factor.value, factor, {field_name: quantity},
                     [f"{fmt(quantity)} {unit}", f"{fmt(factor.value)} {factor.unit}"])
    return line


def _meal(a: Mapping, fs: FactorSet) -> _Line:
    """The diet factors are per person-day; a meal is a third of a day's food."""
    count, diet = int(a["count"]), a.get("diet") or "meat"
    factor, per_day = fs[f"meal.{diet}"], fs["meal.meals_per_day"]
    return _Line(count * factor.value / per_day.value, factor,
                 {"count": count, "diet": diet, "meals_per_day": int(per_day.value)},
                 [plural(count, "meal"), f"{fmt(factor.value)} {factor.unit}",
                  f"÷ {fmt(per_day.value)} meals per day"], [per_day])


CALCULATORS: dict[str, Callable[[Mapping, FactorSet], _Line]] = {
    "flight": _flight,
    "rail": _rail,
    "metro": _per_km("metro"),
    "bus": _per_km("bus"),
    "taxi": _per_km("taxi"),
    "car": _car,
    "hotel": _hotel,
    "electricity": _quantity("kwh", "kWh", "electricity"),
    "natural_gas": _quantity("m3", "m³", "natural_gas"),
    "meal": _meal,
}


def compute_item(activity: Mapping, factors: FactorSet, kind: str = "trip") -> Item:
    activity_type = activity.get("type")
    if activity_type not in CALCULATORS:
        raise ActivityError(f"unknown activity type {activity_type!r}")
    line = CALCULATORS[activity_type](activity, factors)
    kg, calculation = line.kg, line.calculation
    if kind == "life":
        period = activity.get("period") or "year"
        per_year = PERIODS_PER_YEAR[period]
        line.details.update(period=period, periods_per_year=per_year)
        if per_year != 1:
            kg *= per_year
            calculation = [*calculation, f"{per_year} {period}s per year"]
    kg = round3(kg)
    return Item(type=activity_type, category=CATEGORY_OF[activity_type], kg=kg,
                factor=line.factor, parameters=tuple(line.parameters), details=line.details,
                calculation=f"{formula(calculation)} = {fmt(kg)} kg CO2e")


def compare_with_benchmark(total_kg: Decimal, factors: FactorSet) -> Benchmark:
    benchmark = factors["benchmark.per_capita"]
    return Benchmark(factor=benchmark, kg=benchmark.value,
                     ratio=round3(total_kg / benchmark.value),
                     difference_kg=round3(total_kg - benchmark.value))


def estimate(kind: str, activities: Sequence[Mapping], factors: FactorSet) -> Estimate:
    if kind not in KINDS:
        raise ActivityError(f"unknown estimate kind {kind!r}")
    items = tuple(compute_item(activity, factors, kind) for activity in activities)
    categories = {category: Decimal("0.000") for category in CATEGORIES}
    for item in items:
        categories[item.category] += item.kg
    total = sum((item.kg for item in items), Decimal("0.000"))
    return Estimate(kind=kind, factor_set=factors.version, items=items, total_kg=total,
                    categories=categories,
                    benchmark=compare_with_benchmark(total, factors) if kind == "life" else None)
