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

import bisect
import enum
import re
import unicodedata
from collections.abc import Iterable, Iterator
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
    "峽樂園蓮綠豐廈濟麗薩銀邊龜聖峴莊內頓謝開"
)
SIMPLIFIED = (
    "台湾门国际机场东华兰兴凤龙云庆汉阳广马义连尔乌鲁齐滨沈长宁岛屿泽郑贵陕苏无锡温灵"
    "县镇区庐罗纽约伦黄张陆辽扬万卫宝滩桥达维亚纳麦赣闽冈岗锦远运铁铜阴飞鹤盐图梦关岭"
    "峡乐园莲绿丰厦济丽萨银边龟圣岘庄内顿谢开"
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


class AirportIndex:
    """Every airport with an IATA code, folded once; :meth:`search` ranks them for a query.

    Built for typing: each English word start of every city and name is kept in one sorted
    list, so the airports whose city or name has a word starting with the query are a range
    of it (a bisection, not a scan of the 8,000 airports), and the weaker tiers are looked at
    only while the better ones have not yet filled ``limit``."""

    def __init__(self, entries: Iterable[AirportEntry]):
        self._entries = tuple(sorted(entries, key=lambda e: e.iata))
        self._codes = [entry.iata.lower() for entry in self._entries]
        self._by_code = {code: i for i, code in enumerate(self._codes)}
        self._cities = [fold(entry.city) for entry in self._entries]
        self._names = [fold(entry.name) for entry in self._entries]
        self._city_words = _word_starts(self._cities)
        self._name_words = _word_starts(self._names)
        # Cities and names end to end, for the substring tier: one find() scan in C.
        self._offsets, blob = [], []
        position = 0
        for city, name in zip(self._cities, self._names):
            self._offsets.append(position)
            text = f"{city}\x01{name}\x00"
            blob.append(text)
            position += len(text)
        self._blob = "".join(blob)
        self._chinese = [(i, fold(entry.city_zh or ""), fold(entry.name_zh or ""))
                         for i, entry in enumerate(self._entries) if entry.city_zh or entry.name_zh]

    def __len__(self) -> int:
        return len(self._entries)

    def search(self, query: str, limit: int = DEFAULT_LIMIT) -> list[AirportEntry]:
        """The airports matching ``query``, best first, at most ``limit``."""
        folded = fold(query)
        if not folded or limit < 1:
            return []
        ranks: dict[int, tuple[int, int, int]] = {}

        def found(i: int, tier: Tier, whole: bool) -> None:
            # Tiers are visited best first, so an airport keeps the first (best) rank it gets.
            if i not in ranks:
                ranks[i] = (int(tier), 0 if self._entries[i].scheduled else 1, 0 if whole else 1)

        if folded in self._by_code:
            found(self._by_code[folded], Tier.CODE, True)
        if _CJK.search(folded):
            # Chinese has no spaces between words: any part of the city or the name matches.
            for i, city_zh, name_zh in self._chinese:
                if folded in city_zh:
                    found(i, Tier.CITY, city_zh == folded)
                elif folded in name_zh:
                    found(i, Tier.NAME, name_zh == folded)
        else:
            for i in _starting_with(self._city_words, folded):
                found(i, Tier.CITY, self._cities[i] == folded)
            if len(ranks) < limit:
                for i in _starting_with(self._name_words, folded):
                    found(i, Tier.NAME, self._names[i] == folded)
            if len(ranks) < limit:
                for i in self._weak_matches(folded):
                    found(i, Tier.SUBSTRING, False)
        best = sorted(ranks, key=lambda i: (ranks[i], self._codes[i]))[:limit]
        return [self._entries[i] for i in best]

    def _weak_matches(self, query: str) -> Iterator[int]:
        """One or two letters: the codes they start; three characters or more: the airports
        with them anywhere in the city or name."""
        if len(query) < 3:
            if query.isascii() and query.isalpha():
                start = bisect.bisect_left(self._codes, query)
                while start < len(self._codes) and self._codes[start].startswith(query):
                    yield start
                    start += 1
            return
        position = self._blob.find(query)
        while position != -1:
            yield bisect.bisect_right(self._offsets, position) - 1
            position = self._blob.find(query, position + 1)


def _word_starts(fields: list[str]) -> list[tuple[str, int]]:
    """Each field from each of its word starts on, with the field's index, sorted."""
    starts = []
    for i, field in enumerate(fields):
        position = 0
        while position != -1:
            starts.append((field[position:], i))
            position = field.find(" ", position)
            if position != -1:
                position += 1
    starts.sort()
    return starts


def _starting_with(words: list[tuple[str, int]], prefix: str) -> Iterator[int]:
    start = bisect.bisect_left(words, (prefix,))
    while start < len(words) and words[start][0].startswith(prefix):
        yield words[start][1]
        start += 1
