"""The Chinese names file of the airport search (assets/airports_zh.csv) against its cited
sources (assets/airports_zh.md) and against airportsdata."""
from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

import airportsdata
import pytest

from calculator.airports import CHINESE_NAMES_CSV, CHINESE_NAMES_SOURCES, chinese_names

ASSETS = CHINESE_NAMES_CSV.parent
CAAC_LIST = ASSETS / "caac_transport_airports_2025.txt"
NOT_IN_AIRPORTSDATA = ASSETS / "airports_zh_not_in_airportsdata.csv"

# Hong Kong, Macau and Taiwan airports with scheduled passenger service, as airports_zh.md
# cites them (tw-caa: the CAA's domestic stations with routes; tw-taoyuan; hk-aa; mo-cam).
OUTSIDE_MAINLAND = {
    "HKG": "香港国际机场", "MFM": "澳门国际机场", "TPE": "台湾桃园国际机场", "TSA": "台北松山机场",
    "RMQ": "台中国际机场", "CYI": "嘉义水上机场", "TNN": "台南机场", "KHH": "高雄国际机场",
    "HUN": "花莲机场", "TTT": "台东丰年机场", "GNI": "绿岛机场", "KYD": "兰屿机场", "MZG": "澎湖机场",
    "WOT": "望安机场", "CMJ": "七美机场", "KNH": "金门尚义机场", "LZN": "马祖南竿机场", "MFK": "马祖北竿机场",
}
# Major airports abroad the issue names: the search must know them in Chinese.
WORLD = ("LHR", "CDG", "FRA", "AMS", "JFK", "LAX", "SFO", "NRT", "HND", "KIX", "ICN", "SIN", "BKK",
         "KUL", "SYD", "MEL", "DXB", "DOH", "IST")


@pytest.fixture(scope="module")
def rows():
    return chinese_names()


@pytest.fixture(scope="module")
def by_iata():
    return airportsdata.load("IATA")


def caac_names() -> list[str]:
    lines = CAAC_LIST.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def gaps() -> list[dict]:
    with NOT_IN_AIRPORTSDATA.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def test_the_sources_file_defines_every_source_key_with_its_url(rows):
    sources = CHINESE_NAMES_SOURCES.read_text(encoding="utf-8")
    keys = {row["source"] for row in rows} | {row["source"] for row in gaps()}
    for key in keys:
        headings = [line for line in sources.splitlines() if line.startswith("## ")]
        heading = next((line for line in headings if f"`{key}`" in line), None)
        assert heading, f"source {key!r} has no section in {CHINESE_NAMES_SOURCES.name}"
    assert len(re.findall(r"<https://[^>]+>", sources)) >= 6
    assert "simplified" in sources and "transcription" in sources and "licence" in sources


def test_no_code_twice_and_every_code_in_airportsdata_with_the_same_icao(rows, by_iata):
    codes = [row["iata"] for row in rows]
    assert len(codes) == len(set(codes)), sorted(c for c in set(codes) if codes.count(c) > 1)
    for row in rows:
        assert re.fullmatch(r"[A-Z]{3}", row["iata"]), row
        assert row["iata"] in by_iata, f"{row['iata']} is not in airportsdata"
        assert by_iata[row["iata"]]["icao"] == row["icao"], row


def test_names_are_chinese_in_simplified_characters_without_stray_spaces(rows):
    from calculator.domain.airports import TRADITIONAL

    for row in rows:
        for field in ("name_zh", "city_zh"):
            text = row[field]
            assert text and text == text.strip() and unicodedata.normalize("NFC", text) == text, row
            assert re.search(r"[\u4e00-\u9fff]", text), row
            assert not set(text) & set(TRADITIONAL), f"traditional character in {row}"
        assert row["name_zh"].endswith("机场"), row


def test_every_mainland_airport_of_the_caac_list_is_covered(rows):
    names = caac_names()
    assert len(names) == len(set(names)) == 270
    named = {row["name_zh"] for row in rows if row["source"] == "caac-2025"}
    waiting = {row["name_zh"] for row in gaps()}
    assert not named & waiting
    assert set(names) == named | waiting


def test_the_airports_waiting_for_airportsdata_are_really_not_there(by_iata):
    for row in gaps():
        assert row["iata"] not in by_iata, (
            f"airportsdata now knows {row['iata']} ({row['name_zh']}): move it to {CHINESE_NAMES_CSV.name}")


def test_every_hong_kong_macau_and_taiwan_airport_with_scheduled_service_is_covered(rows, by_iata):
    named = {row["iata"]: row["name_zh"] for row in rows}
    for code, name in OUTSIDE_MAINLAND.items():
        assert named.get(code) == name, code
        assert by_iata[code]["country"] in ("HK", "MO", "TW")


def test_the_major_airports_abroad_have_chinese_names(rows):
    named = {row["iata"] for row in rows if row["source"] == "world-aerotools"}
    assert set(WORLD) <= named


@pytest.mark.parametrize("code, name, city", [
    ("CTU", "成都双流国际机场", "成都"), ("TFU", "成都天府国际机场", "成都"),
    ("PEK", "北京首都国际机场", "北京"), ("PKX", "北京大兴国际机场", "北京"),
    ("PVG", "上海浦东国际机场", "上海"), ("SHA", "上海虹桥国际机场", "上海"),
    ("HKG", "香港国际机场", "香港"), ("MFM", "澳门国际机场", "澳门"), ("TPE", "台湾桃园国际机场", "台北"),
])
def test_the_issues_examples_carry_their_official_names(rows, code, name, city):
    row = next(row for row in rows if row["iata"] == code)
    assert (row["name_zh"], row["city_zh"]) == (name, city)


def test_a_file_with_other_columns_is_refused(tmp_path):
    bad = Path(tmp_path / "names.csv")
    bad.write_text("iata,name\nCTU,成都\n", encoding="utf-8")
    with pytest.raises(ValueError, match="columns"):
        chinese_names(bad)
