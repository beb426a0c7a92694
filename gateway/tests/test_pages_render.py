"""The pages' pure helpers: prices, quantities in both languages, charts, equivalents,
translations compiled at start-up, and redirects that stay on the site."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from babel.support import Translations
from flask import Flask
from flask_babel import Babel, force_locale

from gateway import pages, pages_render as render


@pytest.fixture(scope="module")
def babel_app():
    app = Flask(__name__)
    Babel(app)
    with app.app_context():
        yield app


@pytest.mark.parametrize("total_kg, kg", [(533.853, 534), (12.0, 12), (12.001, 13), (0.2, 1)])
def test_orders_cover_whole_kilograms_rounded_up(total_kg, kg):
    assert render.order_kg(total_kg) == kg


@pytest.mark.parametrize("kg, price, fen", [(534, 4500, 2403), (1, 1, 1), (1000, 4500, 4500), (13, 6000, 78)])
def test_price_is_ceil_of_kg_times_price_per_tonne(kg, price, fen):
    assert render.price_fen(kg, price) == fen


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_quantities_and_money_read_naturally(babel_app, locale):
    with force_locale(locale):
        assert render.kg(533.853) == "533.9 kg"
        assert render.kg(12.345) == "12.35 kg"
        assert render.kg(1068) == "1.07 t"
        assert render.kg(1_500_000) == "1,500 t"
        assert render.kg(None) == "0 kg"
        assert render.money(2403) == "¥24.03"
        assert render.money(123_456_789) == "¥1,234,567.89"
        assert render.number(3456) == "3,456"


def test_names_follow_the_language():
    scene = {"slug": "forum", "name": "论坛", "name_en": "Forum"}
    assert render.scene_name(scene, "zh") == "论坛" and render.scene_name(scene, "en") == "Forum"
    assert render.scene_name({"slug": "forum", "name": "论坛", "name_en": None}, "en") == "论坛"
    assert render.project_name({"code": "P-1", "name": "", "name_en": ""}, "en") == "P-1"
    project = {"location": "Chengdu, Sichuan", "location_zh": "四川省成都市"}
    assert render.project_location(project, "zh") == "四川省成都市"
    assert render.project_location(project, "en") == "Chengdu, Sichuan"
    assert render.project_location({"location": "Chengdu", "location_zh": None}, "zh") == "Chengdu"
    assert render.project_location({"location_zh": "成都"}, "en") == "成都"


def test_the_calculators_words_follow_the_language():
    item = {"calculation": "12 km × 0.0278 kg CO2e per passenger-km = 0.334 kg CO2e", "note": None,
            "texts": {"calculation": {"en": "12 km × 0.0278 kg CO2e per passenger-km = 0.334 kg CO2e",
                                      "zh": "12 km × 0.0278 kg CO2e/人公里 = 0.334 kg CO2e"}, "note": None}}
    assert render.worded(item, "calculation", "zh") == "12 km × 0.0278 kg CO2e/人公里 = 0.334 kg CO2e"
    assert render.worded(item, "calculation", "en") == item["calculation"]
    assert render.worded(item, "note", "zh") == ""
    # a body from a calculator that answered no texts: the plain field, as it came
    assert render.worded({"unit": "kg CO2 per kWh"}, "unit", "zh") == "kg CO2 per kWh"


def test_category_bars_longest_first_without_empty_categories(babel_app):
    bars = render.category_bars({"flights": 400.0, "food": 0.0, "transport": 100.0, "accommodation": 200.0})
    assert [b.key for b in bars] == ["flights", "accommodation", "transport"]
    assert [b.width for b in bars] == [render.CHART_BAR_WIDTH, render.CHART_BAR_WIDTH / 2,
                                       render.CHART_BAR_WIDTH / 4]
    assert [b.y for b in bars] == [0, render.CHART_ROW, 2 * render.CHART_ROW]
    assert render.category_bars({}) == [] and render.category_bars(None) == []


def test_cumulative_chart_steps_up_to_the_total_under_the_target():
    start = datetime(2025, 9, 7, tzinfo=timezone.utc)
    events = [(start + timedelta(hours=2), 30.0), (start, 10.0), (start + timedelta(hours=4), 60.0)]
    chart = render.cumulative_chart(events, target_kg=200.0, width=100, height=100)
    points = [tuple(map(float, p.split(","))) for p in chart.points.split()]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)  # time goes right, the total only grows
    assert points[-1] == (100.0, pytest.approx(100 - 100 / 200 * 92, abs=0.1))
    assert chart.target_y == pytest.approx(8.0)
    assert (chart.start, chart.end) == (start, start + timedelta(hours=4))
    empty = render.cumulative_chart([], target_kg=None)
    assert empty.points == "" and empty.target_y is None


def test_everyday_equivalents_use_the_calculators_factors():
    factors = {"car.petrol": {"value": 0.17474, "unit": "kg CO2e per vehicle-km", "source": "DESNZ 2025"},
               "benchmark.per_capita": {"value": 8400, "source": "GCB 2024"}}
    found = render.equivalents(533.853, factors)
    assert found["car_km"].value == pytest.approx(533.853 / 0.17474)
    assert found["car_km"].factor["source"] == "DESNZ 2025"
    assert found["per_capita"].value == pytest.approx(533.853 / 8400)
    assert render.equivalents(100, {}) == {}


def test_translations_compile_at_start_up(tmp_path):
    target = pages.compile_translations(tmp_path)
    compiled = Translations.load(str(target), ["zh"])
    assert compiled.gettext("I want to be carbon neutral") == "我要碳中和"
    # No partial file is left behind.
    assert [p.name for p in (target / "zh" / "LC_MESSAGES").iterdir()] == ["messages.mo"]


@pytest.mark.parametrize("target, safe", [
    ("/c/cert_1?x=1", "/c/cert_1?x=1"), ("//evil.example", "/"), ("https://evil.example", "/"),
    ("/\\evil.example", "/"), ("", "/"), (None, "/")])
def test_language_switch_redirects_only_on_this_site(target, safe):
    assert pages.safe_next(target) == safe
