"""The organiser's lines (venue electricity, catering, waste) against hand-computed cases,
and the scene province codes (no Flask, no database)."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calculator.domain.factors import Factor, FactorSet, parse_factor_file
from calculator.domain.organiser import (
    ORGANISER_CATEGORIES,
    OrganiserInputError,
    OrganiserInputs,
    organiser_footprint,
)
from calculator.domain.provinces import PROVINCES, is_province_code
from calculator.factor_sets import FACTORS_DIR

D = Decimal


def factor(key: str, value: str, unit: str) -> Factor:
    return Factor(key=key, value=D(value), unit=unit, publisher="P", document="Doc", table=f"row {key}",
                  year=2024, citation="P 2024", url="https://example.org")


GRID = factor("electricity", "0.5306", "kg CO2 per kWh")
SICHUAN = factor("electricity.CN-SC", "0.1404", "kg CO2 per kWh")
SET = FactorSet(version="2099.1", title="test", description="", factors={
    f.key: f for f in (
        GRID, factor("meal.meat", "7.04", "kg CO2e per person-day"),
        factor("meal.vegetarian", "3.81", "kg CO2e per person-day"),
        factor("meal.meals_per_day", "3", "meals per day"),
        factor("waste.landfill", "520.3", "kg CO2e per tonne"),
        factor("waste.combustion", "21.3", "kg CO2e per tonne"))})


def footprint(grid=GRID, factor_set=SET, **inputs):
    return organiser_footprint(OrganiserInputs(**inputs), factor_set, grid)


def test_venue_electricity_is_kwh_times_the_grid_factor_given():
    national = footprint(venue_kwh=D("12000"))
    (line,) = national.lines
    assert (line.type, line.category, line.kg) == ("electricity", "venue_energy", D("6367.200"))
    assert line.factor is GRID
    assert line.calculation == "12000 kWh × 0.5306 kg CO2 per kWh = 6367.2 kg CO2"  # the grid counts CO2 only
    # The venue's province decides the grid: the caller passes its factor.
    (regional,) = footprint(grid=SICHUAN, venue_kwh=D("12000")).lines
    assert regional.kg == D("1684.800") and regional.factor is SICHUAN


def test_meals_are_a_third_of_a_person_day_each_diet_its_own_line():
    result = footprint(meat_meals=300, vegetarian_meals=150)
    meat, vegetarian = result.lines
    assert (meat.kg, vegetarian.kg) == (D("704.000"), D("190.500"))   # 300×7.04÷3, 150×3.81÷3
    assert meat.calculation == "300 meals × 7.04 kg CO2e per person-day ÷ 3 meals per day = 704 kg CO2e"
    assert [p.key for p in meat.parameters] == ["meal.meals_per_day"]
    assert meat.details == {"count": 300, "diet": "meat", "meals_per_day": 3}
    assert {line.category for line in result.lines} == {"catering"}
    assert result.total_kg == D("894.500")


@pytest.mark.parametrize("treatment, expected", [("landfill", D("416.240")), ("combustion", D("17.040"))])
def test_waste_is_tonnes_times_the_treatments_factor(treatment, expected):
    (line,) = footprint(waste_kg=D("800"), waste_treatment=treatment).lines
    assert (line.type, line.category, line.kg) == ("waste", "waste", expected)
    assert line.factor.key == f"waste.{treatment}"
    assert line.calculation.startswith("800 kg ÷ 1000 kg per tonne × ")


def test_each_line_is_rounded_to_grams_half_up_and_the_total_adds_the_rounded_lines():
    result = footprint(venue_kwh=D("0.001"), meat_meals=1, vegetarian_meals=1)
    # 0.0005306 → 0.001; 7.04÷3 = 2.34666… → 2.347; 3.81÷3 = 1.27
    assert [line.kg for line in result.lines] == [D("0.001"), D("2.347"), D("1.270")]
    assert result.total_kg == D("3.618")


def test_nothing_entered_or_zero_gives_no_line():
    assert footprint().lines == () and footprint().total_kg == D("0")
    zero = footprint(attendees=250, venue_kwh=D("0"), meat_meals=0, vegetarian_meals=0, waste_kg=D("0"))
    assert zero.lines == () and zero.unpriced == ()


def test_categories_are_always_all_three():
    result = footprint(venue_kwh=D("10"))
    assert result.by_category() == {"venue_energy": D("5.306"), "catering": D("0"), "waste": D("0")}
    assert tuple(result.by_category()) == ORGANISER_CATEGORIES


def test_waste_a_factor_set_cannot_price_is_listed_not_dropped():
    without_waste = FactorSet(version="2025.1", title="t", description="",
                              factors={k: f for k, f in SET.factors.items() if not k.startswith("waste.")})
    result = footprint(factor_set=without_waste, venue_kwh=D("10"), waste_kg=D("5"),
                       waste_treatment="landfill")
    assert [line.type for line in result.lines] == ["electricity"]
    assert [(u.input, u.reason) for u in result.unpriced] == [
        ("waste_kg", "factor set 2025.1 has no waste.landfill factor")]
    assert result.total_kg == D("5.306")


def test_waste_without_a_treatment_is_refused():
    with pytest.raises(OrganiserInputError):
        footprint(waste_kg=D("5"))
    with pytest.raises(OrganiserInputError):
        footprint(waste_kg=D("5"), waste_treatment="compost")


def test_the_published_factor_set_prices_venue_and_meals():
    data = json.loads((FACTORS_DIR / "2025.1.json").read_text(encoding="utf-8"), parse_float=Decimal)
    published = parse_factor_file(data)
    result = organiser_footprint(OrganiserInputs(venue_kwh=D("1000"), meat_meals=3), published,
                                 published["electricity"])
    assert [line.kg for line in result.lines] == [D("530.600"), D("7.040")]


@given(kwh=st.decimals(min_value=0, max_value=10_000_000, places=3),
       meat=st.integers(0, 100_000), vegetarian=st.integers(0, 100_000),
       waste_kg=st.decimals(min_value=0, max_value=10_000_000, places=3),
       treatment=st.sampled_from(("landfill", "combustion")))
def test_the_total_is_the_sum_of_the_lines_and_of_the_categories(kwh, meat, vegetarian, waste_kg, treatment):
    result = footprint(venue_kwh=kwh, meat_meals=meat, vegetarian_meals=vegetarian, waste_kg=waste_kg,
                       waste_treatment=treatment)
    assert result.total_kg == sum((line.kg for line in result.lines), D(0))
    assert result.total_kg == sum(result.by_category().values(), D(0))
    assert all(line.kg >= 0 and line.kg == line.kg.quantize(D("0.001")) for line in result.lines)


@pytest.mark.parametrize("code, valid", [
    ("CN-SC", True), ("CN-BJ", True), ("CN-HK", True), ("CN-XZ", True),
    ("cn-sc", False), ("CN-51", False), ("CN-ZZ", False), ("SC", False), ("", False), (None, False),
    ("CN-SC ", False), (51, False)])
def test_province_codes_are_iso_3166_2_cn_exactly(code, valid):
    assert is_province_code(code) is valid


def test_there_are_thirty_four_provincial_level_divisions():
    assert len(PROVINCES) == 34 and all(code.startswith("CN-") and len(code) == 5 for code in PROVINCES)
