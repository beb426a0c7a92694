"""Footprint arithmetic: one guest's activities × published factors → itemised kilograms.

Everything is Decimal. Each item's kg is rounded once, half-up to 3 decimals (grams), and
totals and category sums add the rounded items, so every figure a guest sees adds up.
Inputs are assumed validated (see ``calculator.schemas``); this module only computes.

Every estimate is one guest's. ``party_size`` says how many people travelled or stayed
together: what they share (a car, a taxi, a hotel room, a household's bills, a table's
meals) is divided among them; what each has their own of (a seat on a plane, a train, a
metro, a bus) is one seat's factor, neither multiplied nor divided.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Mapping, Sequence

from .factors import Factor, FactorSet, grid_factor
from .geo import airport, airport_distance_km

KINDS = ("trip", "life")
ACTIVITY_TYPES = ("flight", "rail", "metro", "bus", "taxi", "car", "hotel", "electricity",
                  "natural_gas", "meal")
CABINS = ("economy", "premium_economy", "business", "first")
RAIL_CLASSES = ("high_speed", "conventional")
FUELS = ("petrol", "diesel", "hybrid", "electric")
DIETS = ("meat", "vegetarian")
# UK rows by haul, and DESNZ's "International, to/from non-UK" rows for every other flight.
FLIGHT_BANDS = ("domestic", "short_haul", "long_haul", "international")
UK = "GB"

CATEGORIES = ("home_energy", "transport", "flights", "food", "accommodation")
CATEGORY_OF = {
    "flight": "flights", "rail": "transport", "metro": "transport", "bus": "transport",
    "taxi": "transport", "car": "transport", "hotel": "accommodation",
    "electricity": "home_energy", "natural_gas": "home_energy", "meal": "food",
}

# A life estimate lets each activity be given per day, week, month or year (the life page
# asks for monthly bills and weekly distances); it is scaled to a year.
PERIODS_PER_YEAR = {"day": 365, "week": 52, "month": 12, "year": 1}

# What radiative forcing is, said once for every page, report and JSON body that shows
# flights with and without it (issue 19: "in plain words, zh and en").
RADIATIVE_FORCING_NOTE = {
    "en": ("Radiative forcing (RF): besides the CO2 from burning its fuel, a plane at cruising "
           "altitude warms the climate through contrails, water vapour and nitrogen oxides. The UK "
           "government's factors (DESNZ 2025) add this by raising a flight's CO2 by 70%, so a flight "
           "\"with RF\" counts about 1.7 times the fuel's direct emissions. The size of the effect is "
           "scientifically uncertain; figures \"without RF\" (like ICAO's CO2-only ones) count only what "
           "the fuel emits. We show both and use the with-RF figure unless the deployment says otherwise."),
    "zh": ("辐射强迫（RF）：飞机在巡航高度除燃油燃烧排放的二氧化碳外，还通过凝结尾迹、水汽和氮氧化物使气候"
           "变暖。英国政府排放因子（DESNZ 2025）把这部分影响计为航班二氧化碳的额外70%，因此“含RF”的航班排放"
           "约为燃油直接排放的1.7倍。这一效应的大小在科学上仍不确定；“不含RF”的数字（如国际民航组织只计"
           "二氧化碳的算法）只计燃油本身的排放。我们两者都列出，除部署另有设置外采用含RF的数字。"),
}

GRAM = Decimal("0.001")
SHARE = Decimal("0.000001")


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
    gases: str | None = None                 # what ``kg`` counts: "CO2" or "CO2e"
    party_size: int = 1
    share: Decimal = Decimal(1)              # the guest's part of what the line measures
    note: str | None = None                  # a proxy or a fallback, said on the line
    kg_without_rf: Decimal | None = None     # flights: the same line without radiative forcing
    radiative_forcing: bool | None = None    # flights: whether ``kg`` includes it


@dataclass(frozen=True)
class Benchmark:
    """The per-capita benchmark against the part of the estimate it is comparable with."""
    factor: Factor
    kg: Decimal
    compared_kg: Decimal        # the estimate's lines counting the benchmark's gases only
    not_compared_kg: Decimal    # the other lines (CO2e), left out of the comparison
    ratio: Decimal
    difference_kg: Decimal
    gases: str | None


@dataclass(frozen=True)
class Estimate:
    kind: str
    factor_set: str
    items: tuple[Item, ...]
    total_kg: Decimal
    categories: Mapping[str, Decimal]
    benchmark: Benchmark | None = None
    # None when a flight's figure without radiative forcing is not known (set 2025.1).
    total_kg_without_rf: Decimal | None = None
    categories_without_rf: Mapping[str, Decimal] | None = None


@dataclass
class _Line:
    """One activity's unrounded result, before period scaling and rounding."""
    kg: Decimal
    factor: Factor
    details: dict
    calculation: list[str]
    parameters: list[Factor] = field(default_factory=list)
    gases: str | None = None
    share: Decimal = Decimal(1)
    note: str | None = None
    kg_without_rf: Decimal | None = None
    radiative_forcing: bool | None = None


def party_size(activity: Mapping) -> int:
    """People travelling or staying together (``passengers`` is the name 2025.1's API used)."""
    return int(activity.get("party_size") or activity.get("passengers") or 1)


def _shared(line: _Line, people: int, what: str) -> _Line:
    """Divide what ``people`` share among them: the guest's share is 1/people."""
    if people != 1:
        line.kg /= people
        line.share = Decimal(1) / people
        line.calculation.append(f"÷ {people} people sharing {what}")
    return line


def _own_seat(line: _Line, people: int) -> _Line:
    """A per-passenger factor already is one guest's seat; travelling together changes nothing."""
    if people != 1:
        line.calculation.append(f"(one seat of {people} people travelling together)")
    return line


# --- flights ---------------------------------------------------------------------------

def flight_band(distance_km: Decimal, factors: FactorSet) -> str:
    """Set 2025.1's haul band by great-circle distance: [0, 500) domestic, [500, 3700)
    short, else long; it priced every flight on these UK rows."""
    if distance_km < factors["flight.short_haul_min_km"].value:
        return "domestic"
    if distance_km < factors["flight.long_haul_min_km"].value:
        return "short_haul"
    return "long_haul"


def flight_geography(activity: Mapping, distance_km: Decimal, factors: FactorSet) -> str:
    """DESNZ's category by geography: a flight within the UK is domestic; one to or from
    the UK is short- or long-haul on the 3,700 km threshold; every other flight (and one
    given by distance only, whose airports are unknown) is "international" (non-UK)."""
    origin = airport(activity["from"]) if activity.get("from") else None
    destination = airport(activity["to"]) if activity.get("to") else None
    countries = {a.country for a in (origin, destination) if a is not None}
    if UK not in countries:
        return "international"
    if countries == {UK}:
        return "domestic"
    return "short_haul" if distance_km < factors["flight.long_haul_min_km"].value else "long_haul"


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


def _flight(a: Mapping, fs: FactorSet, flight_rf: bool = True) -> _Line:
    distance = great_circle_km(a)
    geography = fs.method == "geography"
    band = flight_geography(a, distance, fs) if geography else flight_band(distance, fs)
    cabin = a.get("cabin") or "economy"
    legs = 2 if a.get("round_trip") else 1
    people = party_size(a)
    with_rf, uplift = fs[f"flight.{band}.{cabin}"], fs["flight.distance_uplift"]
    without_rf = fs.factors.get(f"{with_rf.key}.without_rf")
    applied = with_rf if flight_rf or without_rf is None else without_rf
    details = {"distance_km": distance, "band": band, "cabin": cabin, "round_trip": legs == 2}
    if a.get("from"):
        details = {"from": a["from"].upper(), "to": a["to"].upper(), **details}
    calculation = [f"{fmt(distance)} km great-circle", f"{fmt(uplift.value)} distance uplift",
                   f"{fmt(applied.value)} {applied.unit} "
                   f"({'with' if applied is with_rf else 'without'} radiative forcing)"]
    if legs == 2:
        calculation.append("2 legs (round trip)")
    line = _Line(distance * uplift.value * applied.value * legs, applied, details, calculation,
                 [uplift], gases="CO2e", radiative_forcing=applied is with_rf)
    if without_rf is not None:
        line.kg_without_rf = distance * uplift.value * without_rf.value * legs
        line.parameters.append(without_rf if applied is with_rf else with_rf)
    if geography and band == "international":
        line.note = ("Not a flight to or from the UK: DESNZ's 'International, to/from non-UK' "
                     "factors, an average of short- and long-haul flights.")
    return _own_seat(line, people)


# --- ground transport ------------------------------------------------------------------

def _per_km(key: str) -> Callable[[Mapping, FactorSet], _Line]:
    """A per-passenger-km factor (metro, bus): one seat."""
    def line(a: Mapping, fs: FactorSet) -> _Line:
        distance, factor = to_decimal(a["distance_km"]), fs[key]
        result = _Line(distance * factor.value, factor, {"distance_km": distance},
                       [f"{fmt(distance)} km", f"{fmt(factor.value)} {factor.unit}"],
                       gases=factor.gases, note=factor.note)
        return _own_seat(result, party_size(a))
    return line


def _rail(a: Mapping, fs: FactorSet) -> _Line:
    rail_class = a.get("class") or "high_speed"
    distance = to_decimal(a["distance_km"])
    details = {"distance_km": distance, "class": rail_class}
    if rail_class == "high_speed" and "rail.high_speed.kwh_per_train_km" in fs:
        line = _train_on_the_grid(distance, fs, details)
    else:
        factor = fs[f"rail.{rail_class}"]
        line = _Line(distance * factor.value, factor, details,
                     [f"{fmt(distance)} km", f"{fmt(factor.value)} {factor.unit}"],
                     gases=factor.gases, note=factor.note)
    return _own_seat(line, party_size(a))


def _train_on_the_grid(distance: Decimal, fs: FactorSet, details: dict) -> _Line:
    """A Chinese high-speed train's measured energy per train-km over its occupied seats is
    one passenger's kWh per km; times the national grid factor (a train crosses grids)."""
    energy, seats = fs["rail.high_speed.kwh_per_train_km"], fs["rail.high_speed.seats"]
    load, grid = fs["rail.high_speed.load_factor"], fs["electricity"]
    kwh = distance * energy.value / (seats.value * load.value)
    details["kwh"] = round3(kwh)
    return _Line(kwh * grid.value, energy, details,
                 [f"{fmt(distance)} km", f"{fmt(energy.value)} {energy.unit}",
                  f"÷ ({fmt(seats.value)} seats × {fmt(load.value)} occupied)",
                  f"{fmt(grid.value)} {grid.unit}"],
                 [seats, load, grid], gases=grid.gases)


def _taxi(a: Mapping, fs: FactorSet) -> _Line:
    """Per vehicle-km, shared by the people in the taxi."""
    distance, factor = to_decimal(a["distance_km"]), fs["taxi"]
    line = _Line(distance * factor.value, factor, {"distance_km": distance},
                 [f"{fmt(distance)} km", f"{fmt(factor.value)} {factor.unit}"],
                 gases=factor.gases, note=factor.note if fs.method == "geography" else None)
    return _shared(line, party_size(a), "the taxi")


def _car(a: Mapping, fs: FactorSet) -> _Line:
    """Per vehicle-km, shared by the people in the car."""
    distance = to_decimal(a["distance_km"])
    fuel = a.get("fuel") or "petrol"
    details = {"distance_km": distance, "fuel": fuel}
    if fuel == "electric":
        consumption = fs["car.electric_kwh_per_km"]
        grid = grid_factor(fs, a.get("province"))
        kwh = distance * consumption.value
        details["kwh"] = round3(kwh)
        if a.get("province"):
            details["province"] = a["province"]
        line = _Line(kwh * grid.value, grid, details,
                     [f"{fmt(distance)} km", f"{fmt(consumption.value)} {consumption.unit}",
                      f"{fmt(grid.value)} {grid.unit}"], [consumption], gases=grid.gases,
                     note=grid.note if grid.key == "electricity" and a.get("province") else None)
    else:
        factor = fs[f"car.{fuel}"]
        line = _Line(distance * factor.value, factor, details,
                     [f"{fmt(distance)} km", f"{fmt(factor.value)} {factor.unit}"],
                     gases=factor.gases)
    return _shared(line, party_size(a), "the car")


# --- stays, home energy, food ------------------------------------------------------------

def _hotel(a: Mapping, fs: FactorSet) -> _Line:
    """Rooms × nights × the room-night factor, shared by the people in the room(s)."""
    nights, rooms = int(a["nights"]), int(a.get("rooms") or 1)
    country = (a.get("country") or "CN").upper()
    factor = fs.hotel(country)
    details = {"nights": nights, "rooms": rooms, "country": country, "room_nights": nights * rooms}
    line = _Line(nights * rooms * factor.value, factor, details,
                 [plural(nights, "night"), plural(rooms, "room"),
                  f"{fmt(factor.value)} {factor.unit}"], gases=factor.gases,
                 note=factor.note if factor.key == "hotel.fallback" else None)
    return _shared(line, party_size(a), "the room" if rooms == 1 else "the rooms")


def _electricity(a: Mapping, fs: FactorSet) -> _Line:
    """A bill's kWh × the grid factor of the province given (else the national one),
    shared by the household."""
    kwh, province = to_decimal(a["kwh"]), a.get("province")
    grid = grid_factor(fs, province)
    details: dict = {"kwh": kwh}
    if province:
        details["province"] = province
    line = _Line(kwh * grid.value, grid, details,
                 [f"{fmt(kwh)} kWh", f"{fmt(grid.value)} {grid.unit}"], gases=grid.gases,
                 note=grid.note if grid.key == "electricity" and province else None)
    return _shared(line, party_size(a), "the bill")


def _natural_gas(a: Mapping, fs: FactorSet) -> _Line:
    quantity, factor = to_decimal(a["m3"]), fs["natural_gas"]
    line = _Line(quantity * factor.value, factor, {"m3": quantity},
                 [f"{fmt(quantity)} m³", f"{fmt(factor.value)} {factor.unit}"], gases=factor.gases)
    return _shared(line, party_size(a), "the bill")


def _meal(a: Mapping, fs: FactorSet) -> _Line:
    """The diet factors are per person-day; a meal is a third of a day's food. ``count`` is
    the meals of the party; the guest's share is theirs."""
    count, diet = int(a["count"]), a.get("diet") or "meat"
    factor, per_day = fs[f"meal.{diet}"], fs["meal.meals_per_day"]
    line = _Line(count * factor.value / per_day.value, factor,
                 {"count": count, "diet": diet, "meals_per_day": int(per_day.value)},
                 [plural(count, "meal"), f"{fmt(factor.value)} {factor.unit}",
                  f"÷ {fmt(per_day.value)} meals per day"], [per_day], gases=factor.gases)
    return _shared(line, party_size(a), "the meals")


CALCULATORS: dict[str, Callable[[Mapping, FactorSet], _Line]] = {
    "flight": _flight,
    "rail": _rail,
    "metro": _per_km("metro"),
    "bus": _per_km("bus"),
    "taxi": _taxi,
    "car": _car,
    "hotel": _hotel,
    "electricity": _electricity,
    "natural_gas": _natural_gas,
    "meal": _meal,
}


def compute_item(activity: Mapping, factors: FactorSet, kind: str = "trip",
                 flight_rf: bool = True) -> Item:
    """One activity's line. ``flight_rf`` False makes a flight's ``kg`` the figure without
    radiative forcing (the deployment's choice, ``CALCULATOR_FLIGHT_RF``)."""
    activity_type = activity.get("type")
    if activity_type not in CALCULATORS:
        raise ActivityError(f"unknown activity type {activity_type!r}")
    if activity_type == "flight":
        line = _flight(activity, factors, flight_rf)
    else:
        line = CALCULATORS[activity_type](activity, factors)
    kg, kg_without_rf, calculation = line.kg, line.kg_without_rf, line.calculation
    if kind == "life":
        period = activity.get("period") or "year"
        per_year = PERIODS_PER_YEAR[period]
        line.details.update(period=period, periods_per_year=per_year)
        if per_year != 1:
            kg *= per_year
            kg_without_rf = kg_without_rf * per_year if kg_without_rf is not None else None
            calculation = [*calculation, f"{per_year} {period}s per year"]
    kg = round3(kg)
    return Item(type=activity_type, category=CATEGORY_OF[activity_type], kg=kg,
                factor=line.factor, parameters=tuple(line.parameters), details=line.details,
                calculation=f"{formula(calculation)} = {fmt(kg)} kg {line.gases or 'CO2e'}",
                gases=line.gases, party_size=party_size(activity),
                share=line.share.quantize(SHARE, rounding=ROUND_HALF_UP), note=line.note,
                kg_without_rf=round3(kg_without_rf) if kg_without_rf is not None else None,
                radiative_forcing=line.radiative_forcing)


def compare_with_benchmark(items: Sequence[Item], factors: FactorSet) -> Benchmark:
    """Like for like: the benchmark counts territorial fossil CO2, so it is compared with
    the lines that count CO2 only (grid electricity, gas, electric cars, trains on the
    grid); the CO2e lines (flights, food, hotels, fuel cars) are shown beside, not mixed in."""
    benchmark = factors["benchmark.per_capita"]
    gases = benchmark.gases
    # Set 2025.1 compared the whole total (and labelled its CO2 lines CO2e): kept as it
    # was, so its estimates reproduce.
    like_for_like = factors.method == "geography"
    compared = sum((i.kg for i in items if i.gases == gases or not like_for_like), Decimal("0.000"))
    other = sum((i.kg for i in items if i.gases != gases and like_for_like), Decimal("0.000"))
    return Benchmark(factor=benchmark, kg=benchmark.value, compared_kg=compared,
                     not_compared_kg=other, ratio=round3(compared / benchmark.value),
                     difference_kg=round3(compared - benchmark.value), gases=gases)


def estimate(kind: str, activities: Sequence[Mapping], factors: FactorSet,
             flight_rf: bool = True) -> Estimate:
    if kind not in KINDS:
        raise ActivityError(f"unknown estimate kind {kind!r}")
    items = tuple(compute_item(activity, factors, kind, flight_rf) for activity in activities)
    categories = {category: Decimal("0.000") for category in CATEGORIES}
    for item in items:
        categories[item.category] += item.kg
    total = sum((item.kg for item in items), Decimal("0.000"))
    without_rf = _without_rf(items)
    return Estimate(kind=kind, factor_set=factors.version, items=items, total_kg=total,
                    categories=categories,
                    benchmark=compare_with_benchmark(items, factors) if kind == "life" else None,
                    total_kg_without_rf=(sum(without_rf.values(), Decimal("0.000"))
                                         if without_rf is not None else None),
                    categories_without_rf=without_rf)


def _without_rf(items: Sequence[Item]) -> dict[str, Decimal] | None:
    """The categories with each flight's figure without radiative forcing; None when a
    flight's is not known (set 2025.1 publishes none)."""
    categories = {category: Decimal("0.000") for category in CATEGORIES}
    for item in items:
        if item.type == "flight":
            if item.kg_without_rf is None:
                return None
            categories[item.category] += item.kg_without_rf
        else:
            categories[item.category] += item.kg
    return categories
