"""How the live dashboard and the projector screen word their figures (gateway/pages_figures.py):
one unit chosen by magnitude, and a coverage whose bar stops at 100 % and whose sentence says
what more than 100 % or a missing estimate means, in both languages."""
from __future__ import annotations

import pytest
from flask import Flask
from flask_babel import Babel, force_locale

from gateway import pages
from gateway import pages_figures as figures


@pytest.fixture(scope="module")
def babel_app(tmp_path_factory):
    app = Flask(__name__)
    compiled = pages.compile_translations(tmp_path_factory.mktemp("mo"))
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled)
    Babel(app)
    with app.app_context():
        yield app


@pytest.mark.parametrize("kgs, unit", [((None,), "kg"), ((0,), "kg"), ((999.9,), "kg"), ((1000,), "t"),
                                       ((534, 1068), "t"), ((-2500,), "t"), ((), "kg")])
def test_a_tonne_or_more_reads_in_tonnes(kgs, unit):
    assert figures.unit_for(*kgs) == unit


@pytest.mark.parametrize("kg, unit, text", [
    (534, None, "534"), (534.0, "kg", "534"), (12.5, None, "12.5"), (3.25, None, "3.25"), (0, None, "0"),
    (None, None, "0"), (1068, None, "1.07"), (12_345, None, "12.3"), (1_500_000, None, "1,500"),
    (534, "t", "0.53"), (1068, "kg", "1,068"), (99.94, "kg", "99.9"), (150.4, "kg", "150")])
def test_amounts_are_short_enough_to_read_across_a_room(babel_app, kg, unit, text):
    with force_locale("en"):
        assert figures.amount(kg, unit) == text


def test_an_unknown_unit_is_refused():
    with pytest.raises(ValueError):
        figures.amount(10, "lb")


@pytest.mark.parametrize("neutralised, estimated, state, percent, bar, figure", [
    (534, 1068, "partial", 50, 50, "50%"),
    (0, 1068, "partial", 0, 0, "0%"),
    (1067.9, 1068, "partial", 99, 99, "99%"),      # almost is not all: never "100%" below the estimate
    (1068, 1068, "met", 100, 100, "100%"),
    (1072, 1068, "met", 100, 100, "100%"),          # 100.4 % rounds to 100
    (2061, 1068, "over", 193, 100, "> 100%"),       # the bar stops at 100; the figure is never bare
    (3, 0, "no_estimate", None, 0, "—"),
    (0, 0, "nothing", None, 0, "—"),
    (10, None, "unavailable", None, 0, "—"),
    (-5, 100, "partial", 0, 0, "0%"),
])
def test_coverage_is_capped_and_stated(babel_app, neutralised, estimated, state, percent, bar, figure):
    with force_locale("en"):
        found = figures.coverage(neutralised, estimated)
    assert (found.state, found.percent, found.bar, found.figure) == (state, percent, bar, figure)
    assert 0 <= found.bar <= 100 and found.sentence


@pytest.mark.parametrize("locale, neutralised, estimated, sentence", [
    ("zh", 2061, 1068, "抵消量超过估算的碳足迹（193%）"),
    ("en", 2061, 1068, "More than the estimated footprint was offset (193%)"),
    ("zh", 3, 0, "有嘉宾未在本活动估算碳足迹就完成了中和（按固定数量，或用在别处做的估算），"
                 "因此没有估算可供比较。"),
    ("en", 3, 0, "Guests neutralised without estimating a footprint for this event (a fixed amount, or an "
                 "estimate made elsewhere), so there is no estimate to compare with."),
    ("zh", 534, 1068, "已中和估算碳足迹的 50%。"),
    ("en", 534, 1068, "50% of the estimated footprint is neutralised."),
    ("zh", 1068, 1068, "估算的碳足迹已全部中和。"),
    ("en", 0, 0, "No guest has estimated or neutralised a footprint here yet."),
    ("zh", 10, None, "估算的碳足迹暂时无法读取。"),
])
def test_coverage_sentences_in_both_languages(babel_app, locale, neutralised, estimated, sentence):
    with force_locale(locale):
        assert sentence in figures.coverage(neutralised, estimated).sentence


def test_over_100_percent_says_why(babel_app):
    with force_locale("zh"):
        sentence = figures.coverage(2061, 1068).sentence
    assert "整千克向上取整" in sentence and "未作估算" in sentence
