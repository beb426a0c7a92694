"""Airport search by code, city or airport name, in English and Chinese (GET /api/v1/airports).

Pure: the entries come in (English names from ``airportsdata``, Chinese names from
``assets/airports_zh.csv``, both read by :func:`calculator.airports.airport_index`), the
query comes in, ranked matches go out.

Ranking, best first (:class:`Tier`): the exact IATA code, then a city match, then an
airport-name match, then a weaker substring match (a code starting with the query, or the
query inside an English word). Within a tier an airport with scheduled service (one the
Chinese list names) comes before a small field, a whole-field match before a partial one,
and then the IATA code decides, so the same query always answers in the same order."""
from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

MAX_QUERY_LENGTH = 64
DEFAULT_LIMIT = 8
MAX_LIMIT = 20

# Traditional characters of Chinese place and airport names folded to the simplified ones
# the data file holds, so a guest typing 臺北 or 澳門 finds 台北 and 澳门. Only characters
# common in the data file's place and airport names: a search aid, not a general converter.
TRADITIONAL = (
    "臺灣門國際機場東華蘭興鳳龍雲慶漢陽廣馬義連爾烏魯齊濱瀋長寧島嶼澤鄭貴陝蘇無錫溫靈"
    "縣鎮區廬羅紐約倫黃張陸遼揚萬衛寶灘橋達維亞納麥贛閩岡崗錦遠運鐵銅陰飛鶴鹽圖夢關嶺"
    "峽樂"
)
SIMPLIFIED = (
    "台湾门国际机场东华兰兴凤龙云庆汉阳广马义连尔乌鲁齐滨沈长宁岛屿泽郑贵陕苏无锡温灵"
    "县镇区庐罗纽约伦黄张陆辽扬万卫宝滩桥达维亚纳麦赣闽冈岗锦远运铁铜阴飞鹤盐图梦关岭"
    "峡乐"
)
TRADITIONAL_TO_SIMPLIFIED = str.maketrans(TRADITIONAL, SIMPLIFIED)

_WORD_SEPARATORS = re.compile(r"[^\w]+|_")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


class Tier(enum.IntEnum):
    """How an airport matches a query; the lower, the better."""

    CODE = 0
    CITY = 1
    NAME = 2
    SUBSTRING = 3


@dataclass(frozen=True)
class AirportEntry:
    """One airport as the search answers it."""

    iata: str
    name: str
    city: str
    name_zh: str | None
    city_zh: str | None
    country: str
    scheduled: bool  # scheduled passenger service: ranked before small fields

    def as_dict(self) -> dict:
        return {"iata": self.iata, "name": self.name, "city": self.city, "name_zh": self.name_zh,
                "city_zh": self.city_zh, "country": self.country}


def fold(text: str) -> str:
    """``text`` as the index compares it: NFKC (full-width ``ＣＴＵ`` is ``CTU``), case
    folded, accents dropped (``Zürich`` is ``zurich``), traditional Chinese characters
    simplified, and every run of punctuation or spaces one space."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = unicodedata.normalize("NFC", text).translate(TRADITIONAL_TO_SIMPLIFIED)
    return " ".join(_WORD_SEPARATORS.sub(" ", text).split())


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in text)


@dataclass(frozen=True)
class _Indexed:
    entry: AirportEntry
    code: str          # lower case
    city: str          # folded
    name: str          # folded
    city_zh: str       # folded, "" when unknown
    name_zh: str


def _starts_a_word(field: str, query: str) -> bool:
    return field.startswith(query) or f" {query}" in field


def _whole(field: str, query: str) -> bool:
    return field == query


class AirportIndex:
    """Every airport with an IATA code, folded once; :meth:`search` ranks them for a query."""

    def __init__(self, entries: Iterable[AirportEntry]):
        self._items = tuple(
            _Indexed(entry, entry.iata.lower(), fold(entry.city), fold(entry.name),
                     fold(entry.city_zh or ""), fold(entry.name_zh or ""))
            for entry in sorted(entries, key=lambda e: e.iata))

    def __len__(self) -> int:
        return len(self._items)

    def search(self, query: str, limit: int = DEFAULT_LIMIT) -> list[AirportEntry]:
        """The airports matching ``query``, best first, at most ``limit``."""
        folded = fold(query)
        if not folded or limit < 1:
            return []
        ranked = []
        for item in self._items:
            rank = _rank(item, folded)
            if rank is not None:
                ranked.append((rank, item.entry.iata, item.entry))
        ranked.sort(key=lambda r: (r[0], r[1]))
        return [entry for _rank_, _code, entry in ranked[:limit]]


def _rank(item: _Indexed, query: str) -> tuple[int, int, int] | None:
    """(tier, 0 for scheduled service else 1, 0 for a whole-field match else 1), or None."""
    match = _match(item, query)
    if match is None:
        return None
    tier, whole = match
    return (int(tier), 0 if item.entry.scheduled else 1, 0 if whole else 1)


def _match(item: _Indexed, query: str) -> tuple[Tier, bool] | None:
    if query == item.code:
        return Tier.CODE, True
    chinese = bool(_CJK.search(query))
    if chinese:
        # Chinese has no spaces between words: any part of the name is a match.
        if item.city_zh and query in item.city_zh:
            return Tier.CITY, _whole(item.city_zh, query)
        if item.name_zh and query in item.name_zh:
            return Tier.NAME, _whole(item.name_zh, query)
        return None
    if _starts_a_word(item.city, query):
        return Tier.CITY, _whole(item.city, query)
    if _starts_a_word(item.name, query):
        return Tier.NAME, _whole(item.name, query)
    if len(query) < 3 and query.isascii() and query.isalpha() and item.code.startswith(query):
        return Tier.SUBSTRING, False
    if len(query) >= 3 and (query in item.city or query in item.name):
        return Tier.SUBSTRING, False
    return None
