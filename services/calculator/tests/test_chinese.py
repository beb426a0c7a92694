"""The calculator's words in Chinese (issue 21): every line every activity of both published
sets can produce, and every factor, reads in Chinese; what stays Latin is a number, a unit,
a code or a publisher's name."""
from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from calculator import service
from calculator.domain import calculator as calc
from calculator.domain import chinese
from calculator.domain.factors import parse_factor_file
from calculator.factor_sets import FACTORS_DIR

# Latin words a Chinese sentence may keep: units, codes, publishers' and authors' names.
KEPT = {"kWh", "DESNZ", "MEE", "NBS", "Scarborough"}
WORD = re.compile(r"[A-Za-z]{3,}")


def english_words(text: str) -> list[str]:
    return [word for word in WORD.findall(text or "") if word not in KEPT]


def factor_set(version: str):
    data = json.loads((FACTORS_DIR / f"{version}.json").read_text(encoding="utf-8"), parse_float=Decimal)
    return parse_factor_file(data)


ACTIVITIES = [
    {"type": "flight", "from": "PEK", "to": "CTU", "round_trip": True, "party_size": 2},
    {"type": "flight", "from": "CTU", "to": "LHR", "cabin": "business"},
    {"type": "flight", "from": "LHR", "to": "EDI", "cabin": "first"},
    {"type": "flight", "distance_km": 300, "cabin": "premium_economy"},
    {"type": "rail", "distance_km": 1200, "party_size": 3},
    {"type": "rail", "distance_km": 80, "class": "conventional"},
    {"type": "metro", "distance_km": 12, "party_size": 2},
    {"type": "bus", "distance_km": 12},
    {"type": "taxi", "distance_km": 20, "party_size": 3},
    {"type": "car", "distance_km": 100, "fuel": "diesel", "party_size": 2},
    {"type": "car", "distance_km": 100, "fuel": "electric", "province": "CN-HK"},
    {"type": "car", "distance_km": 100, "fuel": "hybrid"},
    {"type": "hotel", "nights": 1, "rooms": 2, "country": "CN", "party_size": 4},
    {"type": "hotel", "nights": 3, "country": "AQ", "party_size": 2},
    {"type": "electricity", "kwh": 300, "province": "CN-SC", "party_size": 3},
    {"type": "electricity", "kwh": 300, "province": "CN-XZ"},
    {"type": "electricity", "kwh": 300, "province": "CN-MO"},
    {"type": "natural_gas", "m3": 20, "party_size": 2},
    {"type": "meal", "count": 1, "diet": "vegetarian"},
    {"type": "meal", "count": 9, "party_size": 3},
]


@pytest.mark.parametrize("version", ["2025.1", "2025.2"])
@pytest.mark.parametrize("kind,period", [("trip", None), ("life", "week"), ("life", "month"),
                                         ("life", "day")])
def test_every_line_reads_in_chinese(version, kind, period):
    fs = factor_set(version)
    for activity in ACTIVITIES:
        activity = {**activity, **({"period": period} if period else {})}
        for flight_rf in (True, False):
            item = service.with_texts(service.item_json(calc.compute_item(activity, fs, kind, flight_rf)))
            zh = [item["texts"]["calculation"]["zh"], (item["texts"]["note"] or {}).get("zh", ""),
                  *(f["texts"][field]["zh"] for f in (item["factor"], *item["parameters"])
                    for field in ("source", "unit", "note") if f["texts"][field])]
            assert item["texts"]["calculation"]["en"] == item["calculation"]
            for text in zh:
                assert not english_words(text), (version, activity, text)


@pytest.mark.parametrize("version", ["2025.1", "2025.2"])
def test_every_factor_has_a_chinese_name_unit_source_and_note(version):
    for factor in factor_set(version):
        body = {**service.factor_json(factor), "citation": factor.citation}
        texts = chinese.factor_texts(body)
        assert chinese.factor_name(factor.key), factor.key
        for field in ("source", "unit", "note"):
            if body[field]:
                assert not english_words(texts[field]["zh"]), (factor.key, texts[field]["zh"])
                assert texts[field]["en"] == body[field]


def test_the_arithmetic_keeps_its_numbers_and_translates_its_words():
    english = ("1556.066 km great-circle × 1.08 distance uplift × 0.10916 kg CO2e per passenger-km "
               "(with radiative forcing) × 2 legs (round trip) (one seat of 2 people travelling together) "
               "= 366.898 kg CO2e")
    assert chinese.calculation(english) == (
        "大圆距离 1556.066 km × 绕航系数 1.08 × 0.10916 kg CO2e/人公里（含辐射强迫） × 2 段（往返）"
        " （2 人同行，每人一个座位） = 366.898 kg CO2e")
    assert chinese.calculation("5 meals × 4.16 kg CO2e per person-day ÷ 3 meals per day ÷ 2 people "
                               "sharing the meals × 52 weeks per year = 1 kg CO2e") == (
        "5 餐 × 4.16 kg CO2e/人天 ÷ 每天 3 餐 ÷ 2 人分摊餐费 × 每年 52 周 = 1 kg CO2e")


def test_lines_stored_by_earlier_versions_read_in_chinese_too():
    stored = ("8302.039 km great-circle × 1.08 uplift × 0.3394 kg CO2e per passenger-km "
              "× 2 legs (round trip) × 2 passengers = 12172.516 kg CO2e")
    assert chinese.calculation(stored) == ("大圆距离 8302.039 km × 绕航系数 1.08 × 0.3394 kg CO2e/人公里 "
                                           "× 2 段（往返） × 2 名乘客 = 12172.516 kg CO2e")
    assert not english_words(chinese.calculation("100 km × 0.17474 kg CO2e per vehicle-km ÷ 2 people sharing "
                                                 "the car = 8.737 kg CO2e"))


def test_what_it_does_not_know_stays_as_written():
    assert chinese.note("A note nobody wrote yet.") == "A note nobody wrote yet."
    assert chinese.note(None) is None and chinese.unit("lumens") == "lumens"
    assert chinese.factor_name("unheard.of") is None
    assert chinese.bilingual(None, "x") is None


def test_the_api_answers_an_estimates_words_in_both_languages(client):
    created = client.post("/api/v1/estimates", json={"kind": "life", "activities": [
        {"type": "taxi", "distance_km": 20, "party_size": 2, "period": "week"},
        {"type": "electricity", "kwh": 200, "period": "month"}]})
    assert created.status_code == 201, created.get_json()
    body = client.get(f"/api/v1/estimates/{created.get_json()['id']}").get_json()
    taxi, electricity = body["items"]
    assert taxi["texts"]["calculation"]["en"] == taxi["calculation"]
    calculation = taxi["texts"]["calculation"]["zh"]
    assert "2 人同乘出租车" in calculation and "每年 52 周" in calculation
    assert "以英国普通出租车代替" in taxi["texts"]["note"]["zh"]
    assert taxi["factor"]["texts"]["unit"] == {"en": "kg CO2e per vehicle-km", "zh": "kg CO2e/车公里"}
    assert electricity["factor"]["texts"]["source"]["zh"].startswith("生态环境部")
    assert "境内化石能源" in body["benchmark"]["factor"]["texts"]["note"]["zh"]
    factors = {f["key"]: f for f in client.get("/api/v1/factors").get_json()["items"]}
    assert factors["car.petrol"]["texts"]["source"]["zh"].endswith("中型汽油车")
