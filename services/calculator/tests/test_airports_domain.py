"""The airport search's matching and ranking (domain/airports.py), on small made-up indexes
and on the real one (airportsdata with the shipped Chinese names)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calculator.airports import airport_index
from calculator.domain.airports import (
    SIMPLIFIED,
    TRADITIONAL,
    AirportEntry,
    AirportIndex,
    Tier,
    fold,
    has_control_characters,
)


def entry(iata, name, city, name_zh=None, city_zh=None, country="CN", scheduled=True):
    return AirportEntry(iata, name, city, name_zh, city_zh, country, scheduled)


SMALL = AirportIndex([
    entry("CTU", "Chengdu Shuangliu International Airport", "Chengdu", "成都双流国际机场", "成都"),
    entry("TFU", "Chengdu/Tianfu Airport", "Tianfu", "成都天府国际机场", "成都"),
    entry("LHR", "London Heathrow Airport", "London", country="GB"),
    entry("LGW", "London Gatwick Airport", "London", country="GB"),
    entry("YXU", "London International Airport", "London", country="CA", scheduled=False),
    entry("ZRH", "Zürich Airport", "Zürich", country="CH"),
    entry("LON", "Londonderry Field", "Eglinton", country="GB", scheduled=False),
    entry("CDU", "Chengdu Duck Pond Strip", "Xindu", scheduled=False),
    entry("TPE", "Taiwan Taoyuan International Airport", "Taipei", "台湾桃园国际机场", "台北", country="TW"),
    entry("MFM", "Macau International Airport", "Taipa", "澳门国际机场", "澳门", country="MO"),
])


def codes(index, query, limit=8):
    return [found.iata for found in index.search(query, limit)]


# --- folding ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, folded", [
    ("CTU", "ctu"), ("ＣＴＵ", "ctu"), ("  Hong   Kong ", "hong kong"), ("Zürich", "zurich"),
    ("São Paulo", "sao paulo"), ("Chengdu/Tianfu", "chengdu tianfu"), ("O'Hare", "o hare"),
    ("臺北", "台北"), ("澳門", "澳门"), ("%", ""), (".*", ""), ("' OR 1=1", "or 1 1"), ("a_b", "a b"),
])
def test_fold_normalises_width_case_accents_traditional_characters_and_punctuation(text, folded):
    assert fold(text) == folded


def test_the_traditional_table_maps_each_character_once_to_a_different_one():
    assert len(TRADITIONAL) == len(SIMPLIFIED) == len(set(TRADITIONAL))
    assert all(t != s for t, s in zip(TRADITIONAL, SIMPLIFIED))


@pytest.mark.parametrize("text, control", [
    ("成都", False), ("hong kong", False), ("a\x00b", True), ("a\nb", True), ("a\u200bb", True),
    ("\x7f", True), ("a\u202eb", True), ("\ud800", True),
])
def test_control_and_format_characters_are_told(text, control):
    assert has_control_characters(text) is control


# --- matching ------------------------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    ("CTU", ["CTU"]), ("ctu", ["CTU"]), ("ＣＴＵ", ["CTU"]),
    ("chengdu", ["CTU", "TFU", "CDU"]), ("CHENGDU", ["CTU", "TFU", "CDU"]),
    ("tianfu", ["TFU"]), ("heathrow", ["LHR"]), ("zurich", ["ZRH"]), ("zür", ["ZRH"]),
    ("成都", ["CTU", "TFU"]), ("天府", ["TFU"]), ("双流", ["CTU"]), ("台北", ["TPE"]), ("臺北", ["TPE"]),
    ("澳門", ["MFM"]), ("桃园", ["TPE"]),
])
def test_matches_codes_english_words_and_chinese_substrings(query, expected):
    assert codes(SMALL, query) == expected


@pytest.mark.parametrize("query", ["%", ".*", "' OR 1=1", "'; DROP TABLE airports; --", "[0-9]+", "^$",
                                   "xyzzy", "成都市中心", "🛫", "   "])
def test_queries_matching_nothing_answer_nothing(query):
    assert codes(SMALL, query) == []


def test_english_matches_start_a_word_not_the_middle_of_one_when_short():
    assert codes(SMALL, "ng") == []          # no word starts with "ng"
    assert codes(SMALL, "ianf") == ["TFU"]   # three letters or more: inside a word, weakest tier


def test_a_code_prefix_is_the_weakest_match():
    assert codes(SMALL, "tf") == ["TFU"]
    assert codes(SMALL, "ct") == ["CTU"]


def test_limit_cuts_after_ranking():
    assert codes(SMALL, "london", 2) == ["LGW", "LHR"]
    assert codes(SMALL, "london", 0) == []


# --- ranking -------------------------------------------------------------------------------

def test_the_exact_code_comes_before_a_city_and_a_city_before_an_airport_name():
    index = AirportIndex([
        entry("LON", "Londonderry Field", "Eglinton"),            # code "lon", name starts with "lon"
        entry("LHR", "London Heathrow Airport", "London"),        # city starts with "lon"
        entry("AAA", "Lonely Airstrip", "Nowhere"),               # name starts with "lon"
    ])
    assert codes(index, "lon") == ["LON", "LHR", "AAA"]


def test_within_a_tier_scheduled_airports_come_before_small_fields():
    assert codes(SMALL, "london") == ["LGW", "LHR", "YXU", "LON"]


def test_within_a_tier_a_whole_field_match_comes_before_a_partial_one():
    index = AirportIndex([
        entry("AAA", "Parisville Strip", "Parisville"),
        entry("CDG", "Charles de Gaulle International Airport", "Paris"),
    ])
    assert codes(index, "paris") == ["CDG", "AAA"]


def test_chinese_city_matches_come_before_chinese_airport_name_matches():
    index = AirportIndex([
        entry("AAA", "Beijing Road Airfield", "Elsewhere", "北京路机场", "别处"),
        entry("PEK", "Beijing Capital International Airport", "Beijing", "北京首都国际机场", "北京"),
    ])
    assert codes(index, "北京") == ["PEK", "AAA"]


def test_the_order_does_not_depend_on_the_order_entries_came_in():
    entries = [entry(code, f"Twin Airport {code}", "Twin") for code in ("BBB", "AAA", "CCC")]
    assert codes(AirportIndex(entries), "twin") == codes(AirportIndex(entries[::-1]), "twin") == [
        "AAA", "BBB", "CCC"]


def test_tiers_are_ordered_as_the_contract_says():
    assert Tier.CODE < Tier.CITY < Tier.NAME < Tier.SUBSTRING


# --- the real index -------------------------------------------------------------------------

@pytest.mark.parametrize("query, first", [
    ("CTU", ["CTU"]), ("ctu", ["CTU"]), ("ＣＴＵ", ["CTU"]), ("成都", ["CTU", "TFU"]),
    ("北京", ["PEK", "PKX"]), ("上海", ["PVG", "SHA"]), ("香港", ["HKG"]), ("澳门", ["MFM"]),
    ("台北", ["TPE", "TSA"]),
    ("臺北", ["TPE", "TSA"]), ("天府", ["TFU"]), ("chengdu", ["CTU", "TFU"]), ("tianfu", ["TFU"]),
    ("heathrow", ["LHR"]), ("hong kong", ["HKG"]), ("臺灣桃園國際機場", ["TPE"]), ("廈門", ["XMN"]),
    ("濟南", ["TNA"]), ("麗江", ["LJG"]), ("高雄", ["KHH"]), ("花蓮", ["HUN"]), ("澳門國際機場", ["MFM"]),
])
def test_the_shipped_index_finds_the_issues_examples(query, first):
    found = codes(airport_index(), query)
    assert found[:len(first)] == first


def test_the_shipped_index_answers_london_with_its_scheduled_airports_first():
    found = airport_index().search("london", 20)
    assert {a.iata for a in found[:3]} == {"LGW", "LHR", "STN"}  # the ones with a Chinese name
    assert all(a.scheduled for a in found[:3]) and not any(a.scheduled for a in found[3:])


def test_the_shipped_index_holds_every_airport_with_an_iata_code_only():
    index = airport_index()
    assert len(index) > 7000
    assert codes(index, "PEK")[0] == "PEK"
    assert all(len(a.iata) == 3 for a in index.search("international", 20))


# --- properties -----------------------------------------------------------------------------

@pytest.mark.parametrize("query", ["a", "pa", "lon", "international", "成", "机场", "chengdu", "ianf", "zz"])
def test_a_smaller_limit_answers_the_first_airports_of_a_larger_one(query):
    index = airport_index()
    full = codes(index, query, 20)
    for limit in range(1, 9):
        assert codes(index, query, limit) == full[:limit]


def test_a_city_match_beats_a_scheduled_airport_name_match_even_when_the_limit_is_one():
    index = AirportIndex([entry("AAA", "Rome Ciampino Airport", "Ciampino"),
                          entry("ZZZ", "Airstrip", "Rome", scheduled=False)])
    assert codes(index, "rome", 1) == ["ZZZ"]
    assert codes(index, "rome", 2) == ["ZZZ", "AAA"]


@settings(max_examples=300, deadline=None)
@given(query=st.text(max_size=64), limit=st.integers(min_value=1, max_value=20))
def test_any_text_answers_at_most_limit_distinct_airports_without_failing(query, limit):
    found = codes(airport_index(), query, limit)
    assert len(found) <= limit and len(found) == len(set(found))
