"""Which texts of a Chinese page are English sentences (issue 21: "a zh walk finds no English
sentence"). Pure: a text in, the English runs found in it out; the walk
(test_zh_everywhere.py) feeds it every visible text and label of every page.

An English sentence is a run of at least two Latin words of three letters or more, in a
stretch of text without Chinese, that is not a proper name, a code, a unit, a URL, an
e-mail address or a number. A run whose every word of three letters or more is capitalised
is a proper name ("Jinjiang District", "Longquan Mountain Urban Forest Carbon Sink"): the
pages write their English in sentence case, so an English label always has a word in
lower case. Words in capitals (IATA, ISO, PEK, DESNZ) are codes or
acronyms; a run is broken by a Chinese character or Chinese punctuation; numbers and codes
stand inside a run ("Shared by 2 people") but are no words of it, so "12 km" or "CO₂e"
never make one.
"""
from __future__ import annotations

import re

# Proper names and the few mixed-case codes and units Chinese text keeps in Latin letters.
# Longest first when they overlap ("WeChat Pay" before "WeChat").
PROPER_NAMES = (
    "Diandian", "CDCER", "DESNZ", "IPCC", "GHG Protocol", "Chengdu", "Sichuan", "WeChat Pay", "WeChat",
    "Alipay", "Scarborough", "Global Carbon Budget", "Our World in Data", "Nature Food", "Fuxing",
    "Playwright", "Chromium", "English", "kWh", "CO2e", "CO₂e", "CO2", "CO₂", "PDF", "SVG", "QR",
)

URL = re.compile(r"\b(?:https?://|www\.)\S+|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b|\b[\w-]+(?:\.[\w-]+)+/\S*")
# Serial numbers, ids and codes mixing letters and digits (CDCER-LQS-FOREST-2022:000000001,
# cert_8f3a, ord_…, CR400AF): never prose.
CODE = re.compile(r"\b[\w-]*\d[\w-]*\b|\b[\w]+_[\w]+\b")
NAMES = re.compile("|".join(re.escape(name) for name in sorted(PROPER_NAMES, key=len, reverse=True)))
# What ends a run: Chinese characters and punctuation, line breaks.
BREAK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef\n·•|]+")
WORD = re.compile(r"[A-Za-z]+(?:['’-][A-Za-z]+)*")
# What may stand between two words of one sentence.
JOINER = re.compile(r"^[\s,;:'\"’“”()\[\]\-–—/&.!?…%¥$€£+×÷=<>~]*$")


def counts(word: str) -> bool:
    """A word of prose: three letters or more and not in capitals (codes, acronyms)."""
    return len(word) >= 3 and not word.isupper()


def _blank(match: re.Match) -> str:
    return " " * len(match.group())   # keeps every position, to quote the original text


def english_runs(text: str) -> list[str]:
    """The English sentences (or sentence fragments) of ``text``, as written there; [] when
    it has none."""
    original = text or ""
    text = URL.sub(_blank, original)
    text = NAMES.sub(_blank, text)
    text = CODE.sub(_blank, text)
    found = []
    for stretch in re.finditer(r"[^\n]+", BREAK.sub(_blank_break, text)):
        run: list[re.Match] = []
        for word in WORD.finditer(stretch.group()):
            between = stretch.group()[run[-1].end():word.start()] if run else ""
            if run and not JOINER.match(between):
                found += _sentence(original, stretch.start(), run)
                run = []
            run.append(word)
        found += _sentence(original, stretch.start(), run)
    return found


def _blank_break(match: re.Match) -> str:
    return "\n" * len(match.group())


def _sentence(original: str, offset: int, run: list[re.Match]) -> list[str]:
    words = [word for word in run if counts(word.group())]
    if len(words) < 2 or all(word.group()[0].isupper() for word in words):
        return []
    return [original[offset + words[0].start():offset + words[-1].end()]]
