"""Factor set 2025.2 (issue 19) against hand calculations from its publications: flights by
DESNZ's geography with and without radiative forcing, one meaning per person (party_size),
the grid by province, a Chinese train, CO2 versus CO2e, and every factor's citation.

Distances are the haversine great-circle distances of the airports (airportsdata, R =
6371.0088 km, rounded to metres): PEK–CTU 1556.066 km, PVG–HKG 1255.670 km, CTU–LHR
8302.039 km, LHR–EDI 533.531 km, LHR–CDG is short-haul (under 3,700 km).
"""
from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from calculator.domain import calculator as calc
from calculator.domain.factors import FactorSetError, grid_factor, parse_factor_file
from calculator.domain.footprint import EstimateSummary, scene_footprint
from calculator.factor_sets import FACTORS_DIR

D = Decimal
REPOSITORY = Path(__file__).resolve().parents[3]


def load(version: str) -> dict:
    return json.loads((FACTORS_DIR / f"{version}.json").read_text(encoding="utf-8"), parse_float=Decimal)


@pytest.fixture(scope="module")
def fs():
    return parse_factor_file(load("2025.2"))


@pytest.fixture(scope="module")
def fs_2025_1():
    return parse_factor_file(load("2025.1"))


def flight(origin, destination, **extra):
    return {"type": "flight", "from": origin, "to": destination, **extra}


# --- flights by geography (the done-when) ----------------------------------------------

def test_pek_ctu_economy_uses_the_non_uk_row_with_and_without_rf(fs):
    item = calc.compute_item(flight("PEK", "CTU"), fs)
    assert (item.details["distance_km"], item.details["band"]) == (D("1556.066"), "international")
    assert item.factor.key == "flight.international.economy" and item.factor.value == D("0.10916")
    assert item.kg == D("183.449")              # 1556.066 × 1.08 × 0.10916 = 183.44906…
    assert item.kg_without_rf == D("108.379")   # 1556.066 × 1.08 × 0.06449 = 108.37914…
    assert item.radiative_forcing is True and item.gases == "CO2e"
    assert "International, to/from non-UK" in item.factor.table and "E33:H33" in item.factor.table
    assert [p.key for p in item.parameters] == ["flight.distance_uplift",
                                                "flight.international.economy.without_rf"]
    assert "1.08 distance uplift" in item.calculation and "with radiative forcing" in item.calculation
    assert "non-UK" in item.note


def test_pvg_hkg_economy(fs):
    item = calc.compute_item(flight("PVG", "HKG"), fs)
    assert item.kg == D("148.034")              # 1255.670 × 1.08 × 0.10916 = 148.03386…
    assert item.kg_without_rf == D("87.456")    # 1255.670 × 1.08 × 0.06449 = 87.45611…


def test_ctu_lhr_business_return_is_unchanged_from_2025_1(fs, fs_2025_1):
    activity = flight("CTU", "LHR", cabin="business", round_trip=True)
    now, before = calc.compute_item(activity, fs), calc.compute_item(activity, fs_2025_1)
    # 8302.039 × 1.08 × 0.3394 × 2 = 6086.25815…: UK long-haul business on both sets
    assert now.kg == before.kg == D("6086.258")
    assert now.details["band"] == before.details["band"] == "long_haul"
    assert now.kg_without_rf == D("3601.365")   # 8302.039 × 1.08 × 0.20083 × 2 = 3601.3654…
    assert before.kg_without_rf is None          # 2025.1 publishes no figure without RF


@pytest.mark.parametrize("origin, destination, band", [
    ("LHR", "EDI", "domestic"),       # both ends in the UK: DESNZ "Domestic, to/from UK"
    ("LHR", "CDG", "short_haul"),     # to/from the UK, under 3,700 km
    ("PEK", "LHR", "long_haul"),      # to/from the UK, from 3,700 km
    ("PEK", "SHA", "international"),  # a domestic Chinese flight is not DESNZ "domestic"
    ("CDG", "JFK", "international"),  # a long flight not touching the UK
])
def test_geography_decides_the_row(fs, origin, destination, band):
    assert calc.compute_item(flight(origin, destination), fs).details["band"] == band


def test_a_short_flight_outside_the_uk_is_not_called_domestic(fs):
    # 2025.1 called every flight under 500 km "domestic" and cited DESNZ; 2025.2 does not.
    item = calc.compute_item({"type": "flight", "distance_km": 300}, fs)
    assert item.details["band"] == "international"
    assert item.kg == D("35.368")               # 300 × 1.08 × 0.10916 = 35.36784


def test_uk_domestic_flight_with_and_without_rf(fs):
    item = calc.compute_item(flight("LHR", "EDI", cabin="first"), fs)
    # one factor for every cabin within the UK: 533.531 × 1.08 × 0.22928 = 132.11407…
    assert (item.kg, item.kg_without_rf) == (D("132.114"), D("78.088"))  # × 0.13552 = 78.0883…


@pytest.mark.parametrize("cabin, with_rf, without_rf", [
    ("economy", "0.10916", "0.06449"), ("premium_economy", "0.17465", "0.10318"),
    ("business", "0.31656", "0.18701"), ("first", "0.43663", "0.25794"),
])
def test_non_uk_rows_by_cabin_are_the_published_ones(fs, cabin, with_rf, without_rf):
    assert fs[f"flight.international.{cabin}"].value == D(with_rf)
    assert fs[f"flight.international.{cabin}.without_rf"].value == D(without_rf)


def test_every_with_rf_row_is_the_direct_emissions_with_co2_raised_70_percent(fs):
    """DESNZ's with-RF row puts the whole indirect effect on the CO2 (+70%): with = without
    + 0.7 × CO2, and CO2 is most of the without-RF figure, so the ratio stays near 1.69."""
    for factor in fs:
        if factor.key.startswith("flight.") and factor.key.endswith(".without_rf"):
            ratio = fs[factor.key.removesuffix(".without_rf")].value / factor.value
            assert D("1.68") < ratio < D("1.70"), factor.key


# --- radiative forcing on and off -----------------------------------------------------------

def test_rf_switched_off_makes_kg_the_figure_without_it(fs):
    item = calc.compute_item(flight("PEK", "CTU"), fs, flight_rf=False)
    assert (item.kg, item.kg_without_rf) == (D("108.379"), D("108.379"))
    assert item.radiative_forcing is False
    assert item.factor.key == "flight.international.economy.without_rf"
    assert "without radiative forcing" in item.calculation
    assert [p.key for p in item.parameters] == ["flight.distance_uplift", "flight.international.economy"]


def test_estimate_totals_with_and_without_rf(fs):
    activities = [flight("PEK", "CTU", round_trip=True), {"type": "hotel", "nights": 2}]
    with_rf = calc.estimate("trip", activities, fs)
    # flights 1556.066 × 1.08 × 0.10916 × 2 = 366.898; hotel 2 × 53.5
    assert with_rf.total_kg == D("473.898")
    assert with_rf.total_kg_without_rf == D("323.758")   # 216.758 + 107
    assert with_rf.categories_without_rf["flights"] == D("216.758")
    assert with_rf.categories_without_rf["accommodation"] == with_rf.categories["accommodation"]
    without = calc.estimate("trip", activities, fs, flight_rf=False)
    assert without.total_kg == without.total_kg_without_rf == D("323.758")


def test_a_2025_1_estimate_with_flights_has_no_figure_without_rf(fs_2025_1):
    result = calc.estimate("trip", [flight("PEK", "CTU"), {"type": "bus", "distance_km": 5}], fs_2025_1)
    assert result.total_kg_without_rf is None and result.categories_without_rf is None
    no_flights = calc.estimate("trip", [{"type": "bus", "distance_km": 5}], fs_2025_1)
    assert no_flights.total_kg_without_rf == no_flights.total_kg


def test_rf_is_explained_in_both_languages():
    note = calc.RADIATIVE_FORCING_NOTE
    assert set(note) == {"en", "zh"}
    assert "70%" in note["en"] and "70%" in note["zh"] and "辐射强迫" in note["zh"]


# --- one meaning per person: party_size for every mode ------------------------------------------

@pytest.mark.parametrize("activity, alone, shared_by_three, what", [
    ({"type": "car", "distance_km": 90}, "15.727", "5.242", "the car"),       # 90 × 0.17474
    ({"type": "taxi", "distance_km": 15}, "3.121", "1.040", "the taxi"),      # 15 × 0.20806
    ({"type": "hotel", "nights": 3}, "160.500", "53.500", "the room"),       # 3 × 53.5
    ({"type": "hotel", "nights": 1, "rooms": 2}, "107.000", "35.667", "the rooms"),
    ({"type": "electricity", "kwh": 300}, "159.180", "53.060", "the bill"),  # 300 × 0.5306
    ({"type": "natural_gas", "m3": 30}, "64.866", "21.622", "the bill"),     # 30 × 2.1622
    ({"type": "meal", "count": 9}, "21.120", "7.040", "the meals"),          # 9 × 7.04 / 3
])
def test_shared_things_are_divided_among_the_party(fs, activity, alone, shared_by_three, what):
    one = calc.compute_item(activity, fs)
    three = calc.compute_item({**activity, "party_size": 3}, fs)
    assert (one.kg, one.party_size, one.share) == (D(alone), 1, D(1))
    assert (three.kg, three.party_size, three.share) == (D(shared_by_three), 3, D("0.333333"))
    assert f"÷ 3 people sharing {what}" in three.calculation


@pytest.mark.parametrize("activity", [
    flight("PEK", "CTU"), {"type": "rail", "distance_km": 300},
    {"type": "rail", "distance_km": 300, "class": "conventional"},
    {"type": "metro", "distance_km": 12}, {"type": "bus", "distance_km": 8},
])
def test_a_seat_is_one_guests_whoever_travels_with_them(fs, activity):
    one, four = calc.compute_item(activity, fs), calc.compute_item({**activity, "party_size": 4}, fs)
    assert one.kg == four.kg and four.share == D(1) and four.party_size == 4
    assert "(one seat of 4 people travelling together)" in four.calculation


def test_the_old_passengers_field_means_party_size(fs):
    car = calc.compute_item({"type": "car", "distance_km": 90, "passengers": 3}, fs)
    assert (car.kg, car.party_size) == (D("5.242"), 3)


# --- electricity by province ---------------------------------------------------------------------

@pytest.mark.parametrize("province, key, value", [
    (None, "electricity", "0.5306"),                       # MEE 2023 national
    ("CN-SC", "electricity.CN-SC", "0.1404"),              # MEE 2022 Sichuan
    ("CN-HE", "electricity.CN-HE", "0.7252"),              # MEE 2022 Hebei
    ("CN-YN", "electricity.CN-YN", "0.1073"),
    ("CN-XZ", "electricity.region.southwest", "0.2268"),   # Tibet: its regional grid
])
def test_grid_factor_by_province(fs, province, key, value):
    factor = grid_factor(fs, province)
    assert (factor.key, factor.value, factor.gases) == (key, D(value), "CO2")


def test_grid_factor_without_a_published_factor_is_the_national_one_and_says_so(fs, fs_2025_1):
    hong_kong = grid_factor(fs, "CN-HK")
    assert (hong_kong.key, hong_kong.value) == ("electricity", D("0.5306"))
    assert "no electricity factor for CN-HK" in hong_kong.note
    assert grid_factor(fs_2025_1, "CN-SC").value == D("0.5306")   # 2025.1 has no provinces


def test_every_mainland_province_but_tibet_has_its_own_factor(fs):
    provinces = sorted(f.key.split(".")[1] for f in fs if re.fullmatch(r"electricity\.CN-[A-Z]{2}", f.key))
    assert len(provinces) == 30 and "CN-XZ" not in provinces and "CN-HK" not in provinces
    assert {fs[f"electricity.{p}"].year for p in provinces} == {2022}


def test_electricity_and_electric_cars_use_the_province_given(fs):
    bill = calc.compute_item({"type": "electricity", "kwh": 300, "province": "CN-SC"}, fs)
    assert (bill.kg, bill.factor.key, bill.details["province"]) == (D("42.120"), "electricity.CN-SC", "CN-SC")
    assert bill.calculation == "300 kWh × 0.1404 kg CO2 per kWh = 42.12 kg CO2"
    # 100 km × 0.20656 kWh/km × 0.1404 = 2.9001024
    car = calc.compute_item({"type": "car", "distance_km": 100, "fuel": "electric", "province": "CN-SC"}, fs)
    assert (car.kg, car.factor.key, car.gases) == (D("2.900"), "electricity.CN-SC", "CO2")
    assert calc.compute_item({"type": "electricity", "kwh": 300, "province": "CN-HK"}, fs).note


# --- Chinese and proxy lines ---------------------------------------------------------------------

def test_a_chinese_high_speed_line_cites_a_chinese_source(fs):
    item = calc.compute_item({"type": "rail", "distance_km": 1318}, fs)   # Beijing–Shanghai
    assert item.factor.key == "rail.high_speed.kwh_per_train_km"
    assert "China" in item.factor.publisher and "中国" in item.factor.publisher
    assert item.factor.url.startswith("https://news.cctv.com/")
    assert [p.key for p in item.parameters] == ["rail.high_speed.seats", "rail.high_speed.load_factor",
                                                "electricity"]
    # 1318 × 19.5 ÷ (576 × 0.95) = 46.968… kWh; × 0.5306 = 24.9213… kg CO2
    assert (item.details["kwh"], item.kg, item.gases) == (D("46.968"), D("24.921"), "CO2")
    assert all(p.publisher for p in item.parameters) and item.note is None


@pytest.mark.parametrize("activity", [
    {"type": "rail", "distance_km": 300, "class": "conventional"}, {"type": "metro", "distance_km": 5},
    {"type": "bus", "distance_km": 5}, {"type": "taxi", "distance_km": 5},
])
def test_a_uk_proxy_says_so_on_the_line(fs, activity):
    item = calc.compute_item(activity, fs)
    assert "DESNZ" in item.factor.publisher and "stands in" in item.note


def test_taxi_cites_desnz_2025(fs):
    taxi = fs["taxi"]
    assert (taxi.value, taxi.year) == (D("0.20806"), 2025)
    assert taxi.citation == "UK DESNZ GHG conversion factors 2025"


# --- CO2 versus CO2e ---------------------------------------------------------------------------

def test_each_factor_says_what_gases_it_counts(fs):
    co2_only = ("electricity", "electricity.CN-SC", "natural_gas", "benchmark.per_capita")
    assert {fs[k].gases for k in co2_only} == {"CO2"}
    assert {fs[k].gases for k in ("flight.international.economy", "taxi", "meal.meat", "hotel.CN",
                                  "waste.landfill")} == {"CO2e"}
    assert fs["flight.distance_uplift"].gases is None and fs["rail.high_speed.seats"].gases is None


def test_the_benchmark_is_compared_like_for_like(fs):
    result = calc.estimate("life", [{"type": "electricity", "kwh": 2000},          # 1061.2 kg CO2
                                    {"type": "car", "distance_km": 1000}], fs)     # 174.74 kg CO2e
    benchmark = result.benchmark
    assert (benchmark.compared_kg, benchmark.not_compared_kg) == (D("1061.200"), D("174.740"))
    assert benchmark.ratio == D("0.126") and benchmark.difference_kg == D("-7338.800")
    assert benchmark.gases == "CO2"


def test_2025_1_life_estimates_compare_as_they_did(fs_2025_1):
    result = calc.estimate("life", [{"type": "electricity", "kwh": 2000},
                                    {"type": "car", "distance_km": 1000}], fs_2025_1)
    assert result.benchmark.compared_kg == result.total_kg == D("1235.940")


# --- every factor cites a publication ----------------------------------------------------------------

def test_every_factor_of_the_current_set_has_a_source_url_edition_and_year(fs):
    for factor in fs:
        assert factor.document and factor.edition and factor.table, factor.key
        assert 2000 <= factor.year <= 2026, factor.key
        if factor.publisher == "Diandian":
            # the platform's own convention is cited to the document that states it
            path, _, anchor = factor.url.partition("#")
            assert (REPOSITORY / path).is_file() and anchor, factor.key
        else:
            assert re.match(r"https?://\S+$", factor.url or ""), factor.key


def test_a_factor_without_a_url_fails_the_citation_check():
    data = load("2025.2")
    del data["sources"]["desnz-2025"]["url"]
    broken = parse_factor_file(data)
    with pytest.raises(AssertionError):
        test_every_factor_of_the_current_set_has_a_source_url_edition_and_year(broken)


def test_the_set_has_a_changelog_and_needs_its_method_keys():
    data = load("2025.2")
    assert len(data["changelog"]) >= 5
    assert any("International, to/from non-UK" in change for change in data["changelog"])
    data["factors"] = [f for f in data["factors"] if f["key"] != "flight.long_haul.first.without_rf"]
    with pytest.raises(FactorSetError, match="flight.long_haul.first.without_rf"):
        parse_factor_file(data)


def test_waste_factors_for_organisers(fs):
    assert fs["waste.landfill"].value == D("520.5327") and fs["waste.combustion"].value == D("4.68568")
    assert "Commercial and industrial waste" in fs["waste.landfill"].table


# --- an event's footprint with and without rf ----------------------------------------------------------

def test_footprint_without_rf_only_flights_differ_and_unknown_is_said():
    from datetime import datetime, timezone

    at = datetime(2026, 12, 5, tzinfo=timezone.utc)
    known = [EstimateSummary("e1", "a", at, 300_000, {"flights": 250_000, "food": 50_000},
                             150_000, {"flights": 100_000, "food": 50_000}),
             EstimateSummary("e2", "b", at, 20_000, {"transport": 20_000}, 20_000, {"transport": 20_000})]
    result = scene_footprint(known)
    assert (result.total_kg, result.total_kg_without_rf) == (D("320.000"), D("170.000"))
    assert result.categories_without_rf["flights"] == D("100.000") and result.without_rf_unknown == 0
    old = EstimateSummary("e3", "c", at, 90_000, {"flights": 90_000})   # a 2025.1 estimate
    partial = scene_footprint([*known, old])
    assert partial.total_kg_without_rf is None and partial.categories_without_rf is None
    assert partial.without_rf_unknown == 1
