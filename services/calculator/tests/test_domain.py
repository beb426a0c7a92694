"""Factor arithmetic against hand-computed cases (no Flask, no database)."""
from __future__ import annotations

import json
import statistics
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from calculator.domain import calculator as calc
from calculator.domain.countries import ISO_3166_ALPHA2, is_country_code
from calculator.domain.factors import FactorSetError, parse_factor_file, version_key
from calculator.domain.footprint import EstimateSummary, scene_footprint
from calculator.domain.geo import EARTH_RADIUS_KM, airport, haversine_km
from calculator.domain.scenes import FORM_TEMPLATES, SCENE_TYPES, form_for, is_valid_slug, page_url
from calculator.factor_sets import FACTORS_DIR

D = Decimal


def load_file_data():
    return json.loads((FACTORS_DIR / "2025.1.json").read_text(encoding="utf-8"), parse_float=Decimal)


@pytest.fixture(scope="module")
def fs():
    return parse_factor_file(load_file_data())


def kg(activity, fs, kind="trip"):
    return calc.compute_item(activity, fs, kind).kg


# --- the default factor set holds exactly the values of issue 3 ----------------------------

@pytest.mark.parametrize("key, value", [
    ("flight.domestic.economy", "0.22928"), ("flight.domestic.first", "0.22928"),
    ("flight.short_haul.economy", "0.12576"), ("flight.short_haul.premium_economy", "0.12576"),
    ("flight.short_haul.business", "0.18863"), ("flight.short_haul.first", "0.18863"),
    ("flight.long_haul.economy", "0.11704"), ("flight.long_haul.premium_economy", "0.18726"),
    ("flight.long_haul.business", "0.3394"), ("flight.long_haul.first", "0.46814"),
    ("flight.distance_uplift", "1.08"), ("flight.short_haul_min_km", "500"),
    ("flight.long_haul_min_km", "3700"), ("rail.high_speed", "0.03546"),
    ("rail.conventional", "0.03546"), ("metro", "0.0278"), ("bus", "0.10385"),
    ("taxi", "0.20805"), ("car.petrol", "0.17474"), ("car.diesel", "0.17174"),
    ("car.hybrid", "0.11724"), ("car.electric_kwh_per_km", "0.20656"), ("electricity", "0.5306"),
    ("natural_gas", "2.1622"), ("meal.meat", "7.04"), ("meal.vegetarian", "4.16"),
    ("meal.meals_per_day", "3"), ("hotel.CN", "53.5"),
])
def test_default_factor_values(fs, key, value):
    assert fs[key].value == D(value)


def test_every_factor_names_its_source(fs):
    for factor in fs:
        assert factor.publisher and factor.document and factor.table and factor.unit
        assert 2000 <= factor.year <= 2030
        assert factor.table in factor.source


def test_natural_gas_factor_follows_from_its_inventory_parameters(fs):
    # 389.31 GJ/10^4 Nm3 × 15.3 tC/TJ × 99% × 44/12, per m3: 2.16219... kg CO2
    derived = D("389.31") / 10_000 * D("15.3") * D("0.99") * 44 / 12
    assert round(derived, 4) == fs["natural_gas"].value


def test_hotel_fallback_is_the_median_of_the_country_factors(fs):
    countries = [f.value for f in fs if f.key.startswith("hotel.") and f.key != "hotel.fallback"]
    assert len(countries) == 38
    assert fs["hotel.fallback"].value == statistics.median(countries)
    assert all(is_country_code(f.key.split(".")[1]) for f in fs
               if f.key.startswith("hotel.") and f.key != "hotel.fallback")


def test_factor_file_without_a_required_key_is_rejected():
    data = load_file_data()
    data["factors"] = [f for f in data["factors"] if f["key"] != "taxi"]
    with pytest.raises(FactorSetError, match="taxi"):
        parse_factor_file(data)


def test_factor_file_with_an_unknown_source_or_bad_value_is_rejected():
    data = load_file_data()
    data["factors"][0]["source"] = "nowhere"
    with pytest.raises(FactorSetError, match="unknown source"):
        parse_factor_file(data)
    data = load_file_data()
    data["factors"][0]["value"] = "-1"
    with pytest.raises(FactorSetError, match="non-negative"):
        parse_factor_file(data)


def test_versions_sort_numerically():
    assert sorted(["2025.10", "2025.9", "2024.3"], key=version_key) == ["2024.3", "2025.9", "2025.10"]


# --- geometry --------------------------------------------------------------------------

def test_haversine_one_degree_on_the_equator():
    # 2π × 6371.0088 / 360 = 111.19508...
    assert haversine_km(0, 0, 0, 1) == pytest.approx(111.195080, abs=1e-6)
    assert EARTH_RADIUS_KM == 6371.0088


def test_haversine_antipodes_is_half_the_circumference():
    assert haversine_km(0, 0, 0, 180) == pytest.approx(3.141592653589793 * 6371.0088, rel=1e-12)


def test_airports_come_from_airportsdata():
    ctu = airport("ctu")
    assert (ctu.code, ctu.country) == ("CTU", "CN")
    assert airport("QQQ") is None and airport("") is None


def test_flight_between_airports_uses_their_great_circle_distance(fs):
    pek, ctu = airport("PEK"), airport("CTU")
    expected = round(D(repr(haversine_km(pek.lat, pek.lon, ctu.lat, ctu.lon))), 3)
    item = calc.compute_item({"type": "flight", "from": "pek", "to": "CTU"}, fs)
    assert item.details["distance_km"] == expected
    assert (item.details["from"], item.details["to"], item.details["band"]) == ("PEK", "CTU",
                                                                                "short_haul")
    assert item.kg == calc.round3(expected * D("1.08") * D("0.12576"))


# --- flights: bands, cabins, round trips, passengers ----------------------------------------

@pytest.mark.parametrize("distance, band, expected", [
    # 499.999 × 1.08 × 0.22928 = 123.8109523776
    ("499.999", "domestic", "123.811"),
    # 500 × 1.08 × 0.12576 = 67.9104
    ("500", "short_haul", "67.910"),
    # 3699.999 × 1.08 × 0.12576 = 502.5368241792
    ("3699.999", "short_haul", "502.537"),
    # 3700 × 1.08 × 0.11704 = 467.69184
    ("3700", "long_haul", "467.692"),
])
def test_flight_band_edges(fs, distance, band, expected):
    item = calc.compute_item({"type": "flight", "distance_km": float(distance)}, fs)
    assert item.details["band"] == band
    assert item.kg == D(expected)


@pytest.mark.parametrize("distance, cabin, expected", [
    (300, "business", "74.287"),          # 300 × 1.08 × 0.22928 = 74.28672 (one domestic factor)
    (1000, "premium_economy", "135.821"),  # 1000 × 1.08 × 0.12576 = 135.8208
    (1000, "first", "203.720"),            # 1000 × 1.08 × 0.18863 = 203.7204
    (5000, "economy", "632.016"),          # 5000 × 1.08 × 0.11704 = 632.016
    (5000, "premium_economy", "1011.204"),  # 5000 × 1.08 × 0.18726 = 1011.204
    (5000, "business", "1832.760"),        # 5000 × 1.08 × 0.3394 = 1832.76
])
def test_flight_cabins(fs, distance, cabin, expected):
    assert kg({"type": "flight", "distance_km": distance, "cabin": cabin}, fs) == D(expected)


def test_round_trip_doubles_and_a_party_is_priced_per_guest(fs):
    # 8000 × 1.08 × 0.46814 × 2 legs = 8089.4592: one guest's seat, however many travel together
    # (2025.1's API multiplied by "passengers"; that name now means party_size, issue 19)
    for together in ({"passengers": 2}, {"party_size": 2}):
        item = calc.compute_item({"type": "flight", "distance_km": 8000, "cabin": "first",
                                  "round_trip": True, **together}, fs)
        assert item.kg == D("8089.459") and (item.party_size, item.share) == (2, D(1))
        assert "2 legs (round trip)" in item.calculation
        assert "2 people travelling together" in item.calculation
    assert [p.key for p in item.parameters] == ["flight.distance_uplift"]


def test_band_is_decided_on_the_distance_rounded_to_metres(fs):
    # 499.9996 km shows as 500.000 km, so it is short-haul like the figure the guest sees.
    item = calc.compute_item({"type": "flight", "distance_km": 499.9996}, fs)
    assert (item.details["distance_km"], item.details["band"]) == (D("500.000"), "short_haul")


# --- ground transport ----------------------------------------------------------------------

@pytest.mark.parametrize("activity, expected", [
    ({"type": "rail", "distance_km": 300}, "10.638"),                 # 300 × 0.03546
    ({"type": "rail", "distance_km": 300, "class": "conventional"}, "10.638"),
    ({"type": "metro", "distance_km": 12.5}, "0.348"),                # 12.5 × 0.0278 = 0.3475
    ({"type": "bus", "distance_km": 10}, "1.039"),                    # 10 × 0.10385 = 1.0385
    ({"type": "taxi", "distance_km": 7.3}, "1.519"),                  # 7.3 × 0.20805 = 1.518765
    ({"type": "car", "distance_km": 100, "passengers": 2}, "8.737"),  # 100 × 0.17474 / 2
    ({"type": "car", "distance_km": 80, "fuel": "diesel"}, "13.739"),  # 80 × 0.17174 = 13.7392
    ({"type": "car", "distance_km": 80, "fuel": "hybrid"}, "9.379"),   # 80 × 0.11724 = 9.3792
    # 100 km × 0.20656 kWh/km × 0.5306 kg/kWh / 2 people = 5.4800368
    ({"type": "car", "distance_km": 100, "fuel": "electric", "passengers": 2}, "5.480"),
])
def test_ground_transport(fs, activity, expected):
    assert kg(activity, fs) == D(expected)


def test_electric_car_shows_its_energy_and_both_factors(fs):
    item = calc.compute_item({"type": "car", "distance_km": 100, "fuel": "electric"}, fs)
    assert item.factor.key == "electricity"
    assert [p.key for p in item.parameters] == ["car.electric_kwh_per_km"]
    assert item.details["kwh"] == D("20.656")
    assert item.category == "transport"


def test_halves_round_up(fs):
    # 10 × 0.20805 = 2.0805 exactly: half-up gives 2.081 (banker's rounding would give 2.080).
    assert kg({"type": "taxi", "distance_km": 10}, fs) == D("2.081")


# --- stays, energy, food ---------------------------------------------------------------------

@pytest.mark.parametrize("activity, factor_key, expected", [
    ({"type": "hotel", "nights": 3, "rooms": 2}, "hotel.CN", "321.000"),      # 3 × 2 × 53.5
    ({"type": "hotel", "nights": 2, "country": "gb"}, "hotel.GB", "20.800"),  # 2 × 10.4
    ({"type": "hotel", "nights": 1, "country": "AD"}, "hotel.fallback", "33.550"),
])
def test_hotel(fs, activity, factor_key, expected):
    item = calc.compute_item(activity, fs)
    assert (item.factor.key, item.kg, item.category) == (factor_key, D(expected), "accommodation")


@pytest.mark.parametrize("activity, expected", [
    ({"type": "electricity", "kwh": 250.5}, "132.915"),   # 250.5 × 0.5306 = 132.9153
    ({"type": "natural_gas", "m3": 12}, "25.946"),        # 12 × 2.1622 = 25.9464
    ({"type": "meal", "count": 5, "diet": "vegetarian"}, "6.933"),  # 5 × 4.16 / 3 = 6.9333…
    ({"type": "meal", "count": 1}, "2.347"),              # 7.04 / 3 = 2.34666…
])
def test_energy_and_meals(fs, activity, expected):
    assert kg(activity, fs) == D(expected)


def test_life_periods_scale_to_a_year(fs):
    # 200 kWh a month: 200 × 0.5306 × 12 = 1273.44
    item = calc.compute_item({"type": "electricity", "kwh": 200, "period": "month"}, fs, "life")
    assert item.kg == D("1273.440")
    assert (item.details["period"], item.details["periods_per_year"]) == ("month", 12)
    # 3 meals a day: 3 × 7.04 / 3 × 365 = 2569.6
    assert kg({"type": "meal", "count": 3, "period": "day"}, fs, "life") == D("2569.600")
    # 100 km a week by petrol car: 100 × 0.17474 × 52 = 908.648
    assert kg({"type": "car", "distance_km": 100, "period": "week"}, fs, "life") == D("908.648")
    # no period in a life estimate means per year
    assert kg({"type": "natural_gas", "m3": 100}, fs, "life") == D("216.220")


# --- whole estimates ---------------------------------------------------------------------

def test_trip_total_and_categories_add_the_rounded_items(fs):
    result = calc.estimate("trip", [
        {"type": "flight", "distance_km": 1000},       # 135.821
        {"type": "metro", "distance_km": 12.5},        # 0.348
        {"type": "hotel", "nights": 1},                # 53.500
        {"type": "meal", "count": 1},                  # 2.347
    ], fs)
    assert result.total_kg == D("192.016")   # 135.821 + 0.348 + 53.5 + 2.347
    assert result.categories == {"home_energy": D("0"), "transport": D("0.348"),
                                 "flights": D("135.821"), "food": D("2.347"),
                                 "accommodation": D("53.500")}
    assert result.benchmark is None and result.factor_set == "2025.1"


def test_life_estimate_is_compared_with_the_per_capita_benchmark(fs):
    result = calc.estimate("life", [{"type": "electricity", "kwh": 2000}], fs)  # 1061.2 kg
    benchmark = result.benchmark
    assert benchmark.kg == D("8400")
    assert benchmark.ratio == D("0.126")             # 1061.2 / 8400 = 0.12633…
    assert benchmark.difference_kg == D("-7338.800")
    assert benchmark.factor.year == 2023 and "Global Carbon Budget" in benchmark.factor.source


def test_calculation_text_reads_like_the_arithmetic(fs):
    item = calc.compute_item({"type": "meal", "count": 5, "diet": "vegetarian"}, fs)
    assert item.calculation == ("5 meals × 4.16 kg CO2e per person-day ÷ 3 meals per day "
                                "= 6.933 kg CO2e")


def test_unknown_activity_type_is_an_error(fs):
    with pytest.raises(calc.ActivityError):
        calc.compute_item({"type": "rocket"}, fs)


# --- scenes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("slug, valid", [
    ("cdcn-forum-2021", True), ("a1", True), ("x", False), ("Upper", False), ("a--b", False),
    ("-a", False), ("a-", False), ("a_b", False), ("中文", False), ("a" * 64, True), ("a" * 65, False),
])
def test_slugs(slug, valid):
    assert is_valid_slug(slug) is valid


def test_every_scene_type_has_a_form_template():
    assert set(FORM_TEMPLATES) == set(SCENE_TYPES)
    assert form_for("restaurant") == ["meal"]
    assert {"flight", "rail", "hotel", "meal"} <= set(form_for("conference"))
    assert "hotel" in form_for("hotel") and "flight" in form_for("hotel")
    assert "flight" in form_for("scenic_spot") and "meal" not in form_for("scenic_spot")
    assert all(t in calc.ACTIVITY_TYPES for form in FORM_TEMPLATES.values() for t in form)


def test_page_url():
    assert page_url("https://x.example/", "dujiangyan") == "https://x.example/s/dujiangyan"


def test_country_codes():
    assert len(ISO_3166_ALPHA2) == 249
    assert is_country_code("cn") and is_country_code("AD") and not is_country_code("ZZ")


# --- event footprint ----------------------------------------------------------------------------

def summary(estimate_id, participant, minutes, total_g, **categories_g):
    return EstimateSummary(estimate_id, participant,
                           datetime(2021, 9, 7, tzinfo=timezone.utc) + timedelta(minutes=minutes),
                           total_g, categories_g)


def test_footprint_counts_each_participant_once_with_the_latest_estimate():
    result = scene_footprint([
        summary("e1", "alice", 0, 100_000, flights=100_000),
        summary("e2", "alice", 5, 150_500, flights=150_000, food=500),  # alice refined hers
        summary("e3", "bob", 1, 20_000, transport=20_000),
        summary("e4", None, 2, 1_001, food=1_001),                      # anonymous
        summary("e5", None, 3, 1_000, food=1_000),                      # another anonymous
    ])
    assert (result.participants, result.estimates) == (4, 5)
    assert result.total_kg == D("172.501")                 # 150.5 + 20 + 1.001 + 1
    assert result.average_kg == D("43.125")                # 172.501 / 4 = 43.12525
    assert result.categories["flights"] == D("150.000")
    assert result.categories["food"] == D("2.501")
    assert result.categories["home_energy"] == D("0.000")


def test_footprint_of_nobody():
    result = scene_footprint([])
    assert (result.participants, result.total_kg, result.average_kg) == (0, D("0"), D("0"))


def test_negative_zero_distance_gives_a_plain_zero(fs):
    item = calc.compute_item({"type": "bus", "distance_km": -0.0}, fs)
    assert (str(item.kg), str(item.details["distance_km"])) == ("0.000", "0.0")
