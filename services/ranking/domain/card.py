"""The shareable rank card: "我是第 12 名，共 3,456 人 · I am No. 12 of 3,456 at <scene>".

A self-contained 1200×630 SVG (the size link previews use): no scripts, no links, no
external fonts or images, only shapes and text in the fonts of the machine showing it
(a CJK family first). Every piece of text that comes from outside — the scene name the
page passes in, the guest's display name — is normalised, stripped of characters XML
cannot carry, escaped, and fitted to the card's width, since SVG text does not wrap.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from xml.sax.saxutils import escape

from .names import normalize_text
from .periods import Period

WIDTH, HEIGHT = 1200, 630
MARGIN = 80
TEXT_WIDTH = WIDTH - 2 * MARGIN
MAX_SCENE_NAME_LENGTH = 120
LANGUAGES = ("zh", "en")
ELLIPSIS = "…"

FONT_FAMILY = ("'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', "
               "'Microsoft YaHei', 'Helvetica Neue', Arial, sans-serif")

PERIOD_LABELS = {
    "zh": {Period.ALL: "总榜", Period.DAY: "今日榜", Period.WEEK: "本周榜", Period.MONTH: "本月榜"},
    "en": {Period.ALL: "all time", Period.DAY: "today", Period.WEEK: "this week", Period.MONTH: "this month"},
}
BRAND = "点点碳中和 · Diandian"


@dataclass(frozen=True)
class Card:
    rank: int
    total: int
    grams: int
    display_name: str
    period: Period
    scene_name: str | None   # None: the global board
    lang: str = "zh"

    def __post_init__(self):
        if self.lang not in LANGUAGES:
            raise ValueError(f"lang must be one of {LANGUAGES}")
        if not 1 <= self.rank <= self.total:
            raise ValueError("rank must be between 1 and total")


# --- text ---------------------------------------------------------------------------

def _xml_char(ch: str) -> bool:
    """Characters XML 1.0 can carry at all (no escape exists for the others)."""
    code = ord(ch)
    return (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF)


def clean_text(text: str) -> str:
    """Outside text made fit for the card: normalised, one line, only XML characters."""
    return "".join(ch for ch in normalize_text(text) if _xml_char(ch))


def _advance(ch: str) -> float:
    """Width of ``ch`` in ems, on the generous side (a sans-serif face's widest habits)."""
    if unicodedata.combining(ch):
        return 0.0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 1.0
    if ch.isspace():
        return 0.3
    if ch.isupper():
        return 0.7
    if ch.isalnum():
        return 0.58
    return 0.4


def text_width(text: str, size: float) -> float:
    return sum(_advance(ch) for ch in text) * size


def _tokens(text: str) -> list[str]:
    """Break opportunities: after each wide (CJK) character and around spaces."""
    tokens: list[str] = []
    word = ""
    for ch in text:
        if ch.isspace() or unicodedata.east_asian_width(ch) in ("W", "F"):
            if word:
                tokens.append(word)
                word = ""
            tokens.append(ch)
        else:
            word += ch
    if word:
        tokens.append(word)
    return tokens


def _with_ellipsis(line: str, size: float, width: float) -> str:
    line = line.rstrip()
    while line and text_width(line + ELLIPSIS, size) > width:
        line = line[:-1].rstrip()
    return line + ELLIPSIS


def fit_lines(text: str, size: float, width: float, max_lines: int) -> list[str]:
    """``text`` wrapped to ``width`` at font ``size`` in at most ``max_lines`` lines, the
    last one ending in an ellipsis when the text does not fit."""
    lines: list[str] = []
    line = ""
    for token in _tokens(text):
        if text_width((line + token).rstrip(), size) <= width:
            line += token
            continue
        if line.strip():
            lines.append(line.rstrip())
        line = token.lstrip()
        while text_width(line, size) > width:   # a word wider than a whole line: cut it
            cut = 1
            while cut < len(line) and text_width(line[:cut + 1], size) <= width:
                cut += 1
            lines.append(line[:cut])
            line = line[cut:]
    if line.strip():
        lines.append(line.rstrip())
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [_with_ellipsis(lines[max_lines - 1], size, width)]
    return lines


def format_kg(grams: int) -> str:
    """Kilograms with thousands separators and no needless decimals: 1,234.5."""
    whole, rest = divmod(grams, 1000)
    decimals = f"{rest:03d}".rstrip("0")
    return f"{whole:,}" + (f".{decimals}" if decimals else "")


# --- the card -----------------------------------------------------------------------

def _scene(card: Card) -> str:
    return clean_text(card.scene_name) if card.scene_name else ""


def sentence(card: Card) -> str:
    """The card in one line: its accessible title, and what a page may print beside it."""
    scene = _scene(card)
    if card.lang == "zh":
        return f"我是第 {card.rank:,} 名，共 {card.total:,} 人 · {scene or '点点碳中和全站'}"
    return f"I am No. {card.rank:,} of {card.total:,} " + (f"at {scene}" if scene else "on Diandian")


def _text(y: int, size: int, content: str, *, bold: bool = False, opacity: float = 1.0) -> str:
    """One line of already escaped ``content`` at the left margin."""
    weight = ' font-weight="bold"' if bold else ""
    fade = f' fill-opacity="{opacity}"' if opacity < 1 else ""
    return f'<text x="{MARGIN}" y="{y}" font-size="{size}"{weight}{fade}>{content}</text>'


# CO₂e with the subscript drawn as a shifted span: many CJK fonts have no "₂".
_CO2E = 'CO<tspan dy="0.22em" font-size="0.7em">2</tspan><tspan dy="-0.22em">e</tspan>'


def _footer(card: Card, size: int) -> str:
    """"张* · 已中和 13 kg CO₂e" / "Alice · 13 kg CO₂e neutralised"; a long name is cut."""
    kg = format_kg(card.grams)
    if card.lang == "zh":
        plain, drawn = f"已中和 {kg} kg CO2e", f"已中和 {escape(kg)} kg {_CO2E}"
    else:
        plain, drawn = f"{kg} kg CO2e neutralised", f"{escape(kg)} kg {_CO2E} neutralised"
    name = clean_text(card.display_name)
    if name:
        room = max(TEXT_WIDTH - text_width(" · " + plain, size), 4 * size)
        drawn = escape(fit_lines(name, size, room, 1)[0]) + " · " + drawn
    return drawn


def render_card(card: Card) -> str:
    """The SVG document of ``card`` (UTF-8 text), read top to bottom as its sentence:
    "I am No. 12 / of 3,456 · this week / at <scene> / <name> · 13 kg CO₂e neutralised"."""
    zh = card.lang == "zh"
    scene = _scene(card)
    if zh:
        headline, subline = f"我是第 {card.rank:,} 名", f"共 {card.total:,} 人 · {PERIOD_LABELS['zh'][card.period]}"
        where = scene or "点点碳中和全站"
    else:
        headline, subline = f"I am No. {card.rank:,}", f"of {card.total:,} · {PERIOD_LABELS['en'][card.period]}"
        where = f"at {scene}" if scene else "on Diandian"
    where_lines = fit_lines(where, 44, TEXT_WIDTH, 2)
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="card-title" '
        f'xml:lang="{"zh-CN" if zh else "en"}">',
        f'<title id="card-title">{escape(sentence(card))}</title>',
        '<defs><linearGradient id="card-bg" x1="0" y1="0" x2="1" y2="1">'
        '<stop offset="0" stop-color="#0f5132"/><stop offset="1" stop-color="#1f9d63"/>'
        '</linearGradient></defs>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="url(#card-bg)"/>',
        '<circle cx="1090" cy="110" r="230" fill="#ffffff" fill-opacity="0.07"/>',
        '<circle cx="1160" cy="590" r="170" fill="#ffffff" fill-opacity="0.06"/>',
        f'<rect x="{MARGIN}" y="500" width="{TEXT_WIDTH}" height="2" fill="#ffffff" fill-opacity="0.35"/>',
        f'<g font-family="{FONT_FAMILY}" fill="#ffffff">',
        _text(96, 30, escape(BRAND), opacity=0.85),
        _text(230, 104, escape(headline), bold=True),
        _text(300, 44, escape(subline), opacity=0.9),
        *(_text(380 + 56 * i, 44, escape(line), bold=True) for i, line in enumerate(where_lines)),
        _text(566, 34, _footer(card, 34), opacity=0.95),
        "</g>",
        "</svg>",
    ]) + "\n"
