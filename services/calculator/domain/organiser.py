"""What an event's organiser adds to its guests' footprint: the venue's electricity, the
catering and the waste, each line priced like an estimate's items (factor, calculation, kg).

Pure arithmetic on Decimals, rounded like estimates (each line half-up to grams, the total
adds the rounded lines). An input the factor set cannot price (waste before the set that
publishes waste factors) is listed as unpriced with the reason, never silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping

from .calculator import fmt, formula, plural, round3, to_decimal
from .factors import Factor, FactorSet

WASTE_TREATMENTS = ("landfill", "combustion")
# The report's categories of the organiser's lines, beside the guests' (flights, transport...).
ORGANISER_CATEGORIES = ("venue_energy", "catering", "waste")
KG_PER_TONNE = Decimal(1000)


class OrganiserInputError(ValueError):
    """Inputs this module cannot compute (the API validates before calling)."""


@dataclass(frozen=True)
class OrganiserInputs:
    """What the organiser entered; None is "not entered" (not zero)."""

    attendees: int | None = None
    venue_kwh: Decimal | None = None
    meat_meals: int | None = None
    vegetarian_meals: int | None = None
    waste_kg: Decimal | None = None
    waste_treatment: str | None = None


@dataclass(frozen=True)
class OrganiserLine:
    type: str          # electricity, meal or waste
    category: str      # one of ORGANISER_CATEGORIES
    kg: Decimal
    factor: Factor
    parameters: tuple[Factor, ...]
    details: Mapping[str, object]
    calculation: str


@dataclass(frozen=True)
class Unpriced:
    """An entered quantity the factor set has no factor for."""

    input: str
    reason: str


@dataclass(frozen=True)
class OrganiserFootprint:
    factor_set: str
    lines: tuple[OrganiserLine, ...]
    total_kg: Decimal
    unpriced: tuple[Unpriced, ...]

    def by_category(self) -> dict[str, Decimal]:
        totals = {name: Decimal("0.000") for name in ORGANISER_CATEGORIES}
        for line in self.lines:
            totals[line.category] += line.kg
        return totals


def _line(type_: str, category: str, kg: Decimal, factor: Factor, details: dict, terms: list[str],
          parameters: tuple[Factor, ...] = ()) -> OrganiserLine:
    kg = round3(kg)
    # The line counts what its factor counts: the grid's factor is CO2 only (MEE).
    return OrganiserLine(type=type_, category=category, kg=kg, factor=factor, parameters=parameters,
                         details=details, calculation=f"{formula(terms)} = {fmt(kg)} kg {factor.gases or 'CO2e'}")


def venue_electricity(kwh: Decimal, grid: Factor) -> OrganiserLine:
    """The venue's metered kWh × the grid factor of the venue's province (or the national one)."""
    kwh = to_decimal(kwh)
    return _line("electricity", "venue_energy", kwh * grid.value, grid, {"kwh": kwh},
                 [f"{fmt(kwh)} kWh", f"{fmt(grid.value)} {grid.unit}"])


def meals(count: int, diet: str, factor_set: FactorSet) -> OrganiserLine:
    """Meals served: the diet factors are per person-day, a meal a third of a day's food
    (as for a guest's meals, calculator._meal)."""
    factor, per_day = factor_set[f"meal.{diet}"], factor_set["meal.meals_per_day"]
    return _line("meal", "catering", count * factor.value / per_day.value, factor,
                 {"count": count, "diet": diet, "meals_per_day": int(per_day.value)},
                 [plural(count, "meal"), f"{fmt(factor.value)} {factor.unit}",
                  f"÷ {fmt(per_day.value)} meals per day"], (per_day,))


def waste(kg: Decimal, treatment: str, factor: Factor) -> OrganiserLine:
    """Waste by weight × the treatment's factor, which is published per tonne."""
    kg = to_decimal(kg)
    return _line("waste", "waste", kg / KG_PER_TONNE * factor.value, factor,
                 {"waste_kg": kg, "treatment": treatment},
                 [f"{fmt(kg)} kg", f"÷ {fmt(KG_PER_TONNE)} kg per tonne",
                  f"{fmt(factor.value)} {factor.unit}"])


def organiser_footprint(inputs: OrganiserInputs, factor_set: FactorSet, grid: Factor) -> OrganiserFootprint:
    """The organiser's lines with ``factor_set``; ``grid`` is the electricity factor of the
    venue's grid. Quantities not entered, or entered as zero, give no line."""
    lines: list[OrganiserLine] = []
    unpriced: list[Unpriced] = []
    if inputs.venue_kwh:
        lines.append(venue_electricity(inputs.venue_kwh, grid))
    for diet, count in (("meat", inputs.meat_meals), ("vegetarian", inputs.vegetarian_meals)):
        if count:
            lines.append(meals(count, diet, factor_set))
    if inputs.waste_kg:
        treatment = inputs.waste_treatment
        if treatment not in WASTE_TREATMENTS:
            raise OrganiserInputError(f"waste needs a treatment, one of {', '.join(WASTE_TREATMENTS)}")
        key = f"waste.{treatment}"
        if key in factor_set:
            lines.append(waste(inputs.waste_kg, treatment, factor_set[key]))
        else:
            unpriced.append(Unpriced("waste_kg", f"factor set {factor_set.version} has no {key} factor"))
    total = sum((line.kg for line in lines), Decimal("0.000"))
    return OrganiserFootprint(factor_set=factor_set.version, lines=tuple(lines), total_kg=total,
                              unpriced=tuple(unpriced))
