"""What the pages compute from the services' JSON before templating: numbers in the guest's
language, bar and line charts (drawn as inline SVG, so no script or style is needed), QR
codes, prices and everyday equivalents. Pure functions of their inputs."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from babel.lists import format_list
from flask_babel import format_decimal, get_locale, lazy_gettext as _l

from diandian_common.qr import dark_runs

# The estimate's categories (docs/contract.md §5), in the order the result page lists them.
CATEGORY_LABELS = {
    "flights": _l("Flights"),
    "transport": _l("Ground transport"),
    "accommodation": _l("Accommodation"),
    "food": _l("Food"),
    "home_energy": _l("Home energy"),
}

ACTIVITY_LABELS = {
    "flight": _l("Flight"),
    "rail": _l("Train"),
    "metro": _l("Metro"),
    "bus": _l("Bus"),
    "taxi": _l("Taxi"),
    "car": _l("Car"),
    "hotel": _l("Hotel"),
    "electricity": _l("Electricity"),
    "natural_gas": _l("Natural gas"),
    "meal": _l("Meals"),
}

SCENE_TYPE_LABELS = {
    "conference": _l("Conference"),
    "scenic_spot": _l("Scenic spot"),
    "supermarket": _l("Supermarket"),
    "restaurant": _l("Restaurant"),
    "hotel": _l("Hotel"),
}

PROJECT_TYPE_LABELS = {
    "forestry_carbon_sink": _l("Forest carbon sink"),
    "clean_transport": _l("Clean transport"),
    "household_biogas": _l("Household biogas"),
    "renewable_energy": _l("Renewable energy"),
}

ORDER_STEPS = ("paid", "retired", "completed")


def label(labels: dict, key: str | None) -> str:
    """The translated label of a known key, the key itself otherwise (new types still show)."""
    return str(labels.get(key, key or ""))


def number(value, max_decimals: int = 2) -> str:
    """A number in the current locale, without trailing zeros: 1,234.5. Rounded half-up,
    as the calculator rounds (Babel alone would round the float 12.345 down)."""
    rounded = Decimal(str(value or 0)).quantize(Decimal(1).scaleb(-max_decimals), rounding=ROUND_HALF_UP)
    return format_decimal(rounded, format="#,##0." + "#" * max_decimals if max_decimals else "#,##0")


def kg(value, unit: str | None = None) -> str:
    """A quantity of CO2e for people in ``unit`` (``kg`` or ``t``, a view's: see
    ``view_unit``); without one, kg below a tonne and t from 1,000 kg (as the certificate)."""
    value = float(value or 0)
    if unit is None:
        unit = view_unit(value)
    if unit == "t":
        return f"{number(value / 1000, 2)} t"
    return f"{number(value, 2 if abs(value) < 100 else 1)} kg"


def view_unit(*values) -> str:
    """The one unit a view shows its quantities in, chosen by its main figure (or the
    largest of them): t from 1,000 kg, else kg. A view mixing "534 kg" and "1.2 t" makes
    the guest convert."""
    largest = max((abs(float(v or 0)) for v in values), default=0)
    return "t" if largest >= 1000 else "kg"


def money(fen: int | None) -> str:
    """Integer fen as yuan: ¥12.34."""
    return f"¥{format_decimal(Decimal(fen or 0).scaleb(-2), format='#,##0.00')}"


def order_kg(total_kg) -> int:
    """Kilograms an order for this footprint covers: rounded up to whole kg (docs/contract.md §3)."""
    return max(1, math.ceil(float(total_kg) - 1e-9))


def price_fen(quantity_kg: int, price_fen_per_tonne: int) -> int:
    """docs/contract.md §3: amount_fen = ceil(quantity_kg × price_fen_per_tonne / 1000), in integers."""
    return -(-quantity_kg * price_fen_per_tonne // 1000)


def scene_name(scene: dict | None, locale: str) -> str:
    if not scene:
        return ""
    if locale == "en" and scene.get("name_en"):
        return scene["name_en"]
    return scene.get("name") or scene.get("slug", "")


def project_name(project: dict | None, locale: str) -> str:
    if not project:
        return ""
    if locale == "en" and project.get("name_en"):
        return project["name_en"]
    return project.get("name") or project.get("code", "")


def project_location(project: dict | None, locale: str) -> str:
    """The location in the page's language: ``location_zh`` on zh pages when the project
    gives one, else ``location`` (and the other way round on en pages)."""
    if not project:
        return ""
    chinese, given = project.get("location_zh"), project.get("location")
    first, second = (given, chinese) if locale == "en" else (chinese, given)
    return first or second or ""


def parse_time(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_date(value) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


# --- what an estimate's lines disclose: gases, radiative forcing, shares ---------------

GASES = {"CO2": "CO₂", "CO2e": "CO₂e"}


def localized(text, locale: str) -> str:
    """A text the services give in one language (a string) or in both (``{"en": …, "zh": …}``)."""
    if isinstance(text, dict):
        return str(text.get(locale) or text.get("en") or text.get("zh") or "")
    return str(text or "")


def worded(thing: dict | None, field: str, locale: str) -> str:
    """A field the calculator words in both languages (``texts.<field>``: a line's
    calculation and note, a factor's source, unit and note), in the page's language; the
    plain field when the body carries no texts (a calculator from before they existed)."""
    thing = thing or {}
    texts = (thing.get("texts") or {}).get(field) if isinstance(thing.get("texts"), dict) else None
    return localized(texts, locale) if texts else localized(thing.get(field), locale)


def gases(factor: dict | None) -> str:
    """What a factor counts, for its label: CO₂ alone, or CO₂e (CO₂ and the other greenhouse
    gases as CO₂ equivalents). A factor of a set from before factors said so is read from its
    unit ("kg CO2 per person per year"), as it was labelled then."""
    factor = factor or {}
    if factor.get("gases") in GASES:
        return GASES[factor["gases"]]
    unit = str(factor.get("unit") or "").replace("₂", "2")
    return GASES["CO2"] if "CO2" in unit and "CO2e" not in unit else GASES["CO2e"]


@dataclass(frozen=True)
class Gases:
    label: str                  # the total's: CO₂e unless every line is CO₂ only
    co2_only: tuple[str, ...]   # activity labels counted as CO₂ only, when the lines mix both


def total_gases(items: list[dict] | None) -> Gases:
    """The honest label of a total: lines of CO₂ only and lines of CO₂e add up to CO₂e in
    which some lines count CO₂ alone; the page names those lines."""
    labels = [gases(item.get("factor")) for item in items or []]
    if labels and all(text == GASES["CO2"] for text in labels):
        return Gases(GASES["CO2"], ())
    only = dict.fromkeys(label(ACTIVITY_LABELS, item.get("type")) for item, text in zip(items or [], labels)
                         if text == GASES["CO2"])
    return Gases(GASES["CO2e"], tuple(only))


def listing(words) -> str:
    """Labels as a list in the page's language: "Electricity and natural gas", "用电和天然气"
    (in English, a label inside the sentence loses its capital)."""
    words, locale = [str(word) for word in words], str(get_locale() or "zh")
    if locale.startswith("en"):
        words = words[:1] + [word[:1].lower() + word[1:] for word in words[1:]]
    return format_list(words, locale=locale) if words else ""


@dataclass(frozen=True)
class RadiativeForcing:
    """What the page says about flights' radiative forcing (RF): whether it is counted, and
    the figures with and without it. ``counted`` None: the estimate predates disclosing it."""

    counted: bool | None
    total_kg: float
    total_kg_without_rf: float | None
    note: str


def radiative_forcing(estimate: dict, locale: str) -> RadiativeForcing | None:
    """None when the estimate has no flight. Otherwise what its flight lines say: RF counted
    when any line's factor says ``radiative_forcing: true``, not counted when they say false,
    unknown for estimates made before lines said it (their totals stay as they were)."""
    flights = [item for item in estimate.get("items") or [] if item.get("type") == "flight"]
    if not flights:
        return None
    flags = [(item.get("factor") or {}).get("radiative_forcing") for item in flights]
    counted = True if True in flags else (False if False in flags else None)
    without = estimate.get("total_kg_without_rf")
    note = localized(((estimate.get("notes") or {}).get("radiative_forcing")), locale)
    return RadiativeForcing(counted, float(estimate.get("total_kg") or 0),
                            float(without) if without is not None else None, note)


def party_size(item: dict) -> int:
    """How many travelled or stayed together on the line; 1 when the line does not say, or
    says something that is not a whole number of people."""
    try:
        return max(1, int(item.get("party_size") or 1))
    except (TypeError, ValueError, OverflowError):
        return 1


def divided(item: dict) -> bool:
    """Whether the line is the guest's share of something the party shared (a car, a room:
    ``share`` below 1) rather than their own seat (``share`` 1, on a plane or a train)."""
    try:
        return float(item.get("share", 0)) < 1
    except (TypeError, ValueError):
        return True


# --- bar chart of kg by category -------------------------------------------------------

@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    kg: float
    width: float  # in chart units, the longest bar is CHART_BAR_WIDTH
    y: float


CHART_WIDTH = 340
CHART_BAR_WIDTH = 220
CHART_ROW = 34


def category_bars(categories: dict | None) -> list[Bar]:
    """One bar per category with emissions, longest first."""
    present = sorted(((k, float(v)) for k, v in (categories or {}).items() if v and float(v) > 0),
                     key=lambda item: -item[1])
    top = present[0][1] if present else 0
    return [Bar(key, label(CATEGORY_LABELS, key), value,
                max(2.0, CHART_BAR_WIDTH * value / top), index * CHART_ROW)
            for index, (key, value) in enumerate(present)]


# --- line chart of cumulative kilograms over time (operator dashboard) -----------------

@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    points: str          # SVG polyline points
    area: str            # SVG polygon points (the filled area under the line)
    target_y: float | None
    max_kg: float
    start: datetime | None
    end: datetime | None


def cumulative_chart(events: list[tuple[datetime, float]], target_kg: float | None = None,
                     width: int = 340, height: int = 160) -> LineChart:
    """A step line of the running total of ``events`` (time, kg), scaled into the box, with
    ``target_kg`` (for example the estimated footprint) as a horizontal reference."""
    events = sorted(events)
    total = sum(k for _, k in events)
    top = max(total, target_kg or 0, 1.0)
    if not events:
        return LineChart(width, height, "", "", _y(target_kg, top, height), top, None, None)
    start, end = events[0][0], events[-1][0]
    span = (end - start).total_seconds() or 1.0
    running, points = 0.0, [(0.0, float(height))]
    for when, quantity in events:
        x = (when - start).total_seconds() / span * width
        points.append((x, _y(running, top, height)))
        running += quantity
        points.append((x, _y(running, top, height)))
    points.append((float(width), _y(running, top, height)))
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    area = f"{line} {width},{height} 0,{height}"
    return LineChart(width, height, line, area, _y(target_kg, top, height), top, start, end)


def _y(value: float | None, top: float, height: int) -> float | None:
    if value is None:
        return None
    return round(height - (value / top) * (height - 8), 1)


# --- QR codes ----------------------------------------------------------------------------

@dataclass(frozen=True)
class QrSvg:
    size: int   # modules, quiet zone included
    path: str   # one path of the dark modules, one subpath per horizontal run


def qr_svg(data: str) -> QrSvg:
    """A QR code as SVG path data: crisp at any size, no image request, no inline style."""
    size, runs = dark_runs(data, border=4)
    return QrSvg(size, "".join(f"M{x} {y}h{n}v1h-{n}z" for x, y, n in runs))


# --- everyday equivalents -----------------------------------------------------------------

@dataclass(frozen=True)
class Equivalent:
    value: float
    factor: dict   # the calculator factor the comparison divides by (value, unit, citation...)


def equivalents(total_kg: float, factors: dict[str, dict], total_gases: str = GASES["CO2e"]
                ) -> dict[str, Equivalent]:
    """The footprint in everyday terms, from the calculator's own cited factors:
    ``car_km`` — kilometres a medium petrol car drives for the same emissions;
    ``per_capita`` — the share of a Chinese resident's yearly per-capita emissions, only when
    the benchmark counts the same gases as the footprint (a CO₂e total against a CO₂-only
    benchmark would overstate the share)."""
    found = {}
    car = factors.get("car.petrol")
    if car and car.get("value"):
        found["car_km"] = Equivalent(total_kg / float(car["value"]), car)
    per_capita = factors.get("benchmark.per_capita")
    if per_capita and per_capita.get("value") and gases(per_capita) == total_gases:
        found["per_capita"] = Equivalent(total_kg / float(per_capita["value"]), per_capita)
    return found


@dataclass(frozen=True)
class Comparison:
    """A life footprint against the calculator's per-capita benchmark, like for like: what of
    the footprint is compared (all of it, or the part counting the benchmark's gases)."""

    compared_kg: float
    benchmark_kg: float
    ratio: float
    gases: str
    whole_total: bool   # the compared figure is the footprint's total
    factor: dict


def comparison(benchmark: dict, total_kg: float) -> Comparison:
    """Read the estimate's ``benchmark``: the compared figure is the one it names
    (``compared_kg``), else the benchmark plus its ``difference_kg`` (exact to the gram, where
    the ratio is rounded); its gases are the benchmark's own."""
    benchmark_kg = float(benchmark.get("kg") or 0)
    ratio = float(benchmark.get("ratio") or 0)
    compared = benchmark.get("compared_kg")
    if compared is None and benchmark.get("difference_kg") is not None:
        compared = benchmark_kg + float(benchmark["difference_kg"])
    compared_kg = float(compared) if compared is not None else float(total_kg)
    factor = benchmark.get("factor") or {}
    label_of = GASES.get(benchmark.get("gases")) or gases(factor)
    return Comparison(compared_kg, benchmark_kg, ratio, label_of,
                      abs(compared_kg - float(total_kg)) < 0.5, factor)


def comparison_bars(total_kg: float, benchmark_kg: float, gases_label: str | None = None) -> list[Bar]:
    """The life footprint next to the per-capita benchmark, on one scale."""
    top = max(total_kg, benchmark_kg, 1e-9)
    rows = (("you", _l("Your year"), total_kg), ("benchmark", _l("Per person in China"), benchmark_kg))
    suffix = f" ({gases_label})" if gases_label else ""
    return [Bar(key, f"{text}{suffix}", value, max(2.0, CHART_BAR_WIDTH * value / top), index * CHART_ROW)
            for index, (key, text, value) in enumerate(rows)]
