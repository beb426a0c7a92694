"""What the result and life-footprint pages disclose about the method (issue 19): radiative
forcing in plain words with the figures with and without it, the gases each line counts,
one guest's share of what a party shared, the calculator's notes on proxies, the per-capita
comparison like for like; and the forms' party size and electricity province."""
from __future__ import annotations

import copy
import html as html_lib
import re

import pytest

from gateway import pages_render as render
from gateway.tests.pages_support import (
    CAR,
    ESTIMATE,
    HOSTILE,
    LIFE_ESTIMATE,
    OLD_ESTIMATE,
    PER_CAPITA,
    RF_NOTE,
    Markup,
    page,
)

PER_CAPITA_CITED = {**PER_CAPITA, "url": "https://globalcarbonbudget.org/", "note": None}


def text_of(html: str) -> str:
    """The page's text as a reader sees it, one space between words."""
    return " ".join(html_lib.unescape("".join(Markup(html).text)).split())


def answer(services, estimate: dict) -> str:
    services["calculator"].on("GET", f"/api/v1/estimates/{estimate['id']}", (200, estimate))
    return f"/e/{estimate['id']}"


@pytest.mark.parametrize("lang, explained, totals, flight, question", [
    ("zh-CN", RF_NOTE["zh"], "含辐射强迫 533.9 kg · 不含 361.3 kg", "含辐射强迫 422.7 kg · 不含 250.1 kg",
     "什么是辐射强迫？"),
    ("en", RF_NOTE["en"], "With radiative forcing 533.9 kg · without 361.3 kg",
     "With radiative forcing 422.7 kg · without 250.1 kg", "What is radiative forcing?"),
])
def test_result_explains_radiative_forcing_and_shows_both_figures(client, lang, explained, totals, flight,
                                                                   question):
    html = page(client, "/e/est-1", lang=lang)
    text = text_of(html)
    markup = Markup(html)
    assert explained in text                        # the calculator's own words, in the page's language
    assert totals in text and flight in text        # the total and the flight line, both figures
    assert markup.find("section", id="radiative-forcing") and markup.find("a", href="#radiative-forcing")
    other = RF_NOTE["en" if lang == "zh-CN" else "zh"]
    assert other not in text


def test_without_the_calculators_note_the_page_explains_radiative_forcing_itself(client, services):
    estimate = {**ESTIMATE, "id": "est-nonote", "notes": {}}
    text = text_of(page(client, answer(services, estimate)))
    assert "辐射强迫：飞机在巡航高度对气候的增温作用大于其排放的二氧化碳本身" in text
    assert "含辐射强迫 533.9 kg · 不含 361.3 kg" in text


def test_radiative_forcing_switched_off_is_said_instead_of_two_figures(client, services):
    estimate = copy.deepcopy(ESTIMATE)
    estimate.update(id="est-norf", total_kg=361.267, total_kg_without_rf=361.267)
    flight = estimate["items"][0]
    flight.update(kg=250.106, kg_without_rf=250.106)
    flight["factor"]["radiative_forcing"] = False
    path = answer(services, estimate)
    zh, en = text_of(page(client, path)), text_of(page(client, path, lang="en"))
    assert "航班未计辐射强迫" in zh and "未计辐射强迫" in zh and "本次碳足迹未计辐射强迫" in zh
    assert "含辐射强迫 " not in zh
    assert "Flights counted without radiative forcing" in en and "Radiative forcing not counted" in en
    assert "With radiative forcing" not in en
    assert RF_NOTE["en"] in en                       # what RF is, still said


def test_an_estimate_from_before_the_disclosure_still_reads(client, services):
    text = text_of(page(client, answer(services, OLD_ESTIMATE), lang="en"))
    assert "533.9 kg CO₂e" in text and "Factor set 2025.1" in text
    assert "With radiative forcing" not in text and "not counted" not in text


def test_a_2025_1_estimate_says_rf_is_counted_without_a_figure_without_it(client, services):
    # Set 2025.1 publishes flights with RF only: the line says so, its kg_without_rf is null.
    estimate = copy.deepcopy(ESTIMATE)
    estimate.update(id="est-2025-1", factor_set="2025.1", total_kg_without_rf=None)
    estimate["items"][0]["kg_without_rf"] = None
    path = answer(services, estimate)
    zh = text_of(page(client, path))
    assert "航班已计辐射强迫" in zh and "所用排放因子集 2025.1 没有公布不含辐射强迫的数字" in zh
    assert "不含 " not in zh and RF_NOTE["zh"] in zh
    en = text_of(page(client, path, lang="en"))
    assert "Flights counted with radiative forcing" in en and "publishes no figure without it" in en


def test_each_line_shows_its_gases_and_the_total_names_the_co2_only_lines(client):
    zh = text_of(page(client, "/e/est-life"))
    # One unit on the page, the total's (issue 21): 600 kg is 0.6 t beside a 4.2 t total.
    assert "用电 · 1.5 t CO₂ " in zh and "天然气 · 0.6 t CO₂ " in zh and "汽车 · 0.9 t CO₂e" in zh
    assert "4.2 t CO₂e 每年" in zh
    assert "用电和天然气：按其公布的排放因子只计二氧化碳（CO₂）" in zh
    en = text_of(page(client, "/e/est-life", lang="en"))
    assert "Electricity and natural gas: CO₂ only" in en


def test_a_total_of_co2_only_lines_is_labelled_co2(client, services):
    only_co2 = {**LIFE_ESTIMATE, "id": "est-co2", "total_kg": 2100.0, "total_kg_without_rf": 2100.0,
                "items": LIFE_ESTIMATE["items"][:2]}
    text = text_of(page(client, answer(services, only_co2), lang="en"))
    assert "2.1 t CO₂ per year" in text and "CO₂e" not in text.split("Footprint by category")[0]


def test_a_shared_activity_shows_one_guests_share_and_proxies_say_so(client, services):
    zh = text_of(page(client, "/e/est-1"))
    assert "3 人同行，每人 1/3" in zh
    assert "说明： No Chinese source publishes a taxi factor" in zh
    assert "1/1" not in zh                           # alone: no share to state
    life = text_of(page(client, "/e/est-life", lang="en"))
    assert "Shared by 3 people, 1/3 each" in life and "Power grid: Sichuan" in life
    assert "电网：四川" in text_of(page(client, "/e/est-life"))
    # On a plane each has their own seat: travelling together divides nothing.
    seats = copy.deepcopy(ESTIMATE)
    seats["id"] = "est-seats"
    seats["items"][0].update(party_size=3, share=1.0)
    text = text_of(page(client, answer(services, seats)))
    assert "3 人同行，每人一个座位" in text and "3 人同行，每人 1/3" in text   # the flight; the taxi
    # A note in both languages is read in the page's; a hostile one is text, never markup.
    estimate = copy.deepcopy(ESTIMATE)
    estimate["id"] = "est-notes"
    estimate["items"][2]["note"] = {"en": "UK proxy " + HOSTILE, "zh": "无中国数据源，以英国数据代替"}
    path = answer(services, estimate)
    assert "无中国数据源，以英国数据代替" in text_of(page(client, path))
    html = page(client, path, lang="en")
    assert HOSTILE not in html and "UK proxy &lt;script&gt;" in html


def label_of(html: str, control_id: str) -> str:
    found = re.search(rf'<label for="{re.escape(control_id)}">(.*?)</label>', html, re.S)
    return text_of(found.group(1)) if found else ""


def test_trip_form_asks_who_travels_together(client):
    html = page(client, "/s/forum/form", lang="zh-CN")
    markup = Markup(html)
    for activity, label in (("flight", "同行人数"), ("taxi", "同乘人数"), ("car", "同车人数"),
                            ("hotel", "同住人数")):
        [field] = markup.find("input", id=f"a-{activity}-party_size")
        assert field["data-field"] == "party_size" and field["data-kind"] == "int"
        assert field["value"] == "1" and field["min"] == "1" and field["max"] == "500"
        assert label_of(html, f"a-{activity}-party_size") == label
    assert "含你本人；碳足迹按每人分摊计算" in text_of(html)
    assert not markup.find("input", **{"data-field": "passengers"})
    assert label_of(page(client, "/s/forum/form", lang="en"), "a-flight-party_size") == "Travelling together"


@pytest.mark.parametrize("lang, national, sichuan", [("zh-CN", "不确定：按全国电网平均", "四川"),
                                                     ("en", "Not sure: national grid average", "Sichuan")])
def test_life_footprint_asks_the_electricity_province(client, lang, national, sichuan):
    html = page(client, "/footprint", lang=lang)
    markup = Markup(html)
    [select] = markup.find("select", id="life-1-province")
    assert select["data-field"] == "province" and select["data-kind"] == "text"
    select_html = re.search(r'<select id="life-1-province".*?</select>', html, re.S).group(0)
    options = Markup(select_html).find("option")
    codes = [o["value"] for o in options[1:]]
    assert len(codes) == 31 and len(set(codes)) == 31 and all(re.fullmatch(r"CN-[A-Z]{2}", c) for c in codes)
    assert "CN-SC" in codes and "CN-TW" not in codes
    # None chosen: the national grid, and nothing is sent (app.js leaves an empty value out).
    assert options[0]["value"] == "" and "selected" in options[0]
    assert not any("selected" in o for o in options[1:])
    assert f'<option value="" selected>{national}</option>' in html
    assert f'<option value="CN-SC">{sichuan}</option>' in html
    # The province belongs to the electricity question, which app.js sends as one activity.
    fieldsets = [a["data-activity"] for t, a in markup.elements if t == "fieldset"]
    assert fieldsets[0] == "electricity"
    assert markup.find("input", id="life-1-party_size") and markup.find("input", id="life-3-party_size")


@pytest.mark.parametrize("lang, question, explained", [
    ("zh-CN", "什么是辐射强迫？", "凝结尾迹"), ("en", "What is radiative forcing?", "contrails")])
def test_life_footprint_form_says_what_radiative_forcing_is(client, lang, question, explained):
    text = text_of(page(client, "/footprint", lang=lang))
    assert question in text and explained in text


CO2E_PER_CAPITA = {"key": "benchmark.per_capita", "value": 9000, "unit": "kg CO2e per person per year",
                   "gases": "CO2e", "source": "A per-capita CO2e footprint benchmark, 2022",
                   "url": "https://example.org/per-capita", "note": None}


def test_life_footprint_against_a_co2_only_benchmark_compares_its_co2(client, services):
    estimate = copy.deepcopy(LIFE_ESTIMATE)
    estimate["id"] = "est-co2cmp"
    estimate["benchmark"] = {"kg": 8400, "ratio": 0.25, "difference_kg": -6300.0, "compared_kg": 2100.0,
                             "gases": "CO2", "factor": {**PER_CAPITA_CITED, "gases": "CO2"}}
    html = page(client, answer(services, estimate), lang="en")
    text = text_of(html)
    assert "Your lines counting CO₂ only are 25% of the average yearly emissions per person in China." in text
    assert ("Like for like: the average counts CO₂ only, so it is compared with your lines that count CO₂ "
            "only (2.1 t), not with your 4.2 t total.") in text
    assert "Your year (CO₂) 2.1 t; Per person in China (CO₂) 8.4 t" in text      # the chart's title
    assert Markup(html).find("a", href=PER_CAPITA_CITED["url"])
    zh = text_of(page(client, f"/e/{estimate['id']}"))
    assert "你碳足迹中只计 CO₂ 的各项是中国人均年排放量的 25%。" in zh
    assert ("同口径比较：人均数字只计 CO₂，因此只与你碳足迹中同样只计 CO₂ 的各项（2.1 t）比较，"
            "而非总计 4.2 t。") in zh


def test_life_footprint_against_a_co2e_benchmark_compares_the_whole_total(client, services):
    estimate = copy.deepcopy(LIFE_ESTIMATE)
    estimate["id"] = "est-co2e"
    estimate["benchmark"] = {"kg": 9000, "ratio": 0.467, "difference_kg": -4800.0, "factor": CO2E_PER_CAPITA}
    text = text_of(page(client, answer(services, estimate), lang="en"))
    assert "Your footprint is 47% of the average" in text
    assert "Both figures count the same gases: CO₂e." in text
    assert "Your year (CO₂e) 4.2 t; Per person in China (CO₂e) 9 t" in text
    assert "A per-capita CO2e footprint benchmark, 2022 — 9,000 kg CO2e per person per year" in text


def test_an_old_benchmark_of_co2_against_a_co2e_total_says_it_is_rough(client):
    # est-life as factor set 2025.1 compared it: its whole CO₂e total against 8.4 t of CO₂.
    text = text_of(page(client, "/e/est-life", lang="en"))
    assert "A rough comparison: the average counts CO₂ only, your footprint CO₂e." in text


def test_a_trips_share_of_a_co2e_per_capita_figure_is_shown(client, services):
    # Against the CO₂-only figure it is not (test_pages' result test); factor sets are read once.
    services["calculator"].on("GET", "/api/v1/factors", (200, {"version": "2025.2",
                                                               "items": [CAR, CO2E_PER_CAPITA]}))
    text = text_of(page(client, "/e/est-1", lang="en"))
    assert f"{533.853 / 9000 * 100:.1f}% of what a person in China emits in a year." in text


@pytest.mark.parametrize("factor, label", [
    ({"gases": "CO2"}, "CO₂"), ({"gases": "CO2e"}, "CO₂e"),
    ({"unit": "kg CO2 per person per year"}, "CO₂"),        # a set from before factors said so
    ({"unit": "kg CO2e per passenger-km"}, "CO₂e"), ({}, "CO₂e"), (None, "CO₂e"),
    ({"gases": "<b>", "unit": "kg CO2e per kWh"}, "CO₂e"),  # an unknown word is not printed
])
def test_the_gases_a_factor_counts(factor, label):
    assert render.gases(factor) == label


@pytest.mark.parametrize("value, size", [(3, 3), ("2", 2), (None, 1), (0, 1), (-4, 1), ("many", 1), ([], 1)])
def test_a_lines_party_size_is_a_whole_number_of_people(value, size):
    assert render.party_size({"party_size": value}) == size


@pytest.mark.parametrize("share, divided", [(0.333333, True), (1, False), (1.0, False), ("x", True)])
def test_a_line_is_divided_when_its_share_is_below_one(share, divided):
    assert render.divided({"share": share}) is divided


def test_radiative_forcing_is_read_from_the_flight_lines():
    assert render.radiative_forcing({"items": [{"type": "hotel"}]}, "en") is None
    counted = render.radiative_forcing(ESTIMATE, "zh")
    assert counted.counted is True and counted.total_kg_without_rf == 361.267
    assert counted.note == RF_NOTE["zh"]
    assert render.radiative_forcing(OLD_ESTIMATE, "en").counted is None
    assert render.localized({"en": "only English"}, "zh") == "only English"
    assert render.localized("plain", "zh") == "plain" and render.localized(None, "en") == ""
