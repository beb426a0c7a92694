"""What the pages compute from the services' JSON before templating: numbers in the guest's
language, bar and line charts (drawn as inline SVG, so no script or style is needed), QR
codes, prices and everyday equivalents. Pure functions of their inputs."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import format_decimal, lazy_gettext as _l

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


def kg(value) -> str:
    """A quantity of CO2e for people: kg below a tonne, t from 1,000 kg (as the certificate)."""
    value = float(value or 0)
    if abs(value) >= 1000:
        return f"{number(value / 1000, 2)} t"
    return f"{number(value, 2 if abs(value) < 100 else 1)} kg"


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


def equivalents(total_kg: float, factors: dict[str, dict]) -> dict[str, Equivalent]:
    """The footprint in everyday terms, from the calculator's own cited factors:
    ``car_km`` — kilometres a medium petrol car drives for the same emissions;
    ``per_capita`` — the share of a Chinese resident's yearly per-capita emissions."""
    found = {}
    car = factors.get("car.petrol")
    if car and car.get("value"):
        found["car_km"] = Equivalent(total_kg / float(car["value"]), car)
    per_capita = factors.get("benchmark.per_capita")
    if per_capita and per_capita.get("value"):
        found["per_capita"] = Equivalent(total_kg / float(per_capita["value"]), per_capita)
    return found


def comparison_bars(total_kg: float, benchmark_kg: float) -> list[Bar]:
    """The life footprint next to the per-capita benchmark, on one scale."""
    top = max(total_kg, benchmark_kg, 1e-9)
    rows = (("you", _l("Your year"), total_kg), ("benchmark", _l("Per person in China"), benchmark_kg))
    return [Bar(key, str(text), value, max(2.0, CHART_BAR_WIDTH * value / top), index * CHART_ROW)
            for index, (key, text, value) in enumerate(rows)]
