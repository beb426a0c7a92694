"""The zh walk's classifier (zh_text.py): what counts as an English sentence on a Chinese
page and what does not. Pure; no browser, no stack."""
from __future__ import annotations

import pytest

from tests.browser.zh_text import english_runs


@pytest.mark.parametrize("text, runs", [
    ("unknown IATA airport code 'XXX'", ["unknown IATA airport code"]),
    ("Not a flight to or from the UK: DESNZ's 'International, to/from non-UK' factors",
     ["Not a flight to or from the UK: DESNZ's 'International, to/from non-UK' factors"]),
    ("来源：UK DESNZ GHG conversion factors 2025", ["conversion factors"]),
    ("地点 Chengdu, Sichuan is very nice", ["very nice"]),
    ("Hotel stay", ["Hotel stay"]),
    ("Page Not found", ["Page Not found"]),
    ("Radiative forcing not counted", ["Radiative forcing not counted"]),
    ("价格 ¥60.00/吨 · Not enough credits left", ["Not enough credits left"]),
    ("Shared by 2 people, 1/2 each", ["Shared by 2 people, 1/2 each"]),
    ("1 night × 2 rooms", ["night × 2 rooms"]),
])
def test_english_sentences_are_found(text, runs):
    assert english_runs(text) == runs


@pytest.mark.parametrize("text", [
    "你的碳足迹", "183.45 kg CO₂e", "1556.066 km × 1.08 × 0.10916 kg CO2e/人公里（含辐射强迫）",
    "PEK – CTU", "CDCER-LQS-FOREST-2022:000000001-000000013", "cert_8f3a2b", "ord_0f9e",
    "Diandian", "点点 Diandian", "WeChat Pay", "Alipay", "https://www.gov.uk/government/publications/ghg",
    "pay@xj-pv.example", "英国能源安全与净零排放部（DESNZ）", "kWh", "ISO 3166", "English", "中文",
    "Scarborough 等，2023年", "Li Lei", "UK DESNZ", "复兴号CR400AF", "Longquan 龙泉山", "PDF", "No. 3",
    "", "   ", "Global Carbon Budget 2024", "成都市锦江区 Jinjiang District, Chengdu", "High-tech Zone",
    "Longquan Mountain Urban Forest Carbon Sink", "New-Energy Bus Fleet",
])
def test_names_codes_units_urls_and_numbers_are_not_sentences(text):
    assert english_runs(text) == []


def test_chinese_between_words_breaks_a_run():
    assert english_runs("Chengdu 成都 forest 森林 sink") == []
    assert english_runs("单位：green forest") == ["green forest"]
