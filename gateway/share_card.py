"""The certificate's share card: ``GET /api/v1/certificates/<id>/card.png`` (public,
docs/contract.md §5), a 1080×1920 portrait PNG made for a phone's long-press "save image"
and for link previews (og:image).

The gateway composes it, as it composes the event report: the certificate's public view
from the certificates service, the scene's names (Chinese and English) from the calculator,
and the holder's rank on the scene's board (the whole platform's for a certificate without a
scene) from the ranking service, all over HTTP.

Whose rank: the holder's, found by the certificate's order (``/api/v1/rankings/orders/<id>``),
which answers a rank and the board's size and never the participant's id or name. The card
shows nothing the public board does not: the board lists the same person under the same name
(masked there too when the holder chose so). Until ranking has recorded the order (or when it
is revoked there), the card says how many people are carbon neutral on the board instead.

The holder's name is the certificates service's: a holder who chose to appear masked is
shown masked, as every public verification shows them.

Layout is pure (:func:`layout`, given a way to measure text) and unit-tested; drawing
(:func:`draw`) only paints what the layout placed. Rendered cards are kept in a small LRU
keyed by the hash of what they show, which is also their ETag.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Callable

from flask import Flask, Response, request
from PIL import Image, ImageDraw, ImageFont

from diandian_common import fontconfig
from diandian_common.errors import ApiError
from diandian_common.qr import qr_code

from .pages import reader, segment

log = logging.getLogger(__name__)

ROUTE = "/api/v1/certificates/<certificate_id>/card.png"
WIDTH, HEIGHT = 1080, 1920
# Part of every card's hash: a change of the drawing makes every cached card and ETag new.
DRAWING_VERSION = "1"
CACHE_CONTROL = "public, max-age=300"
RETRY_AFTER_S = "5"
CACHE_SIZE = 64  # cards of about 100 kB: a few MB at most
# The certificates service's own rule for what can be a certificate id.
CERTIFICATE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
TEXT_LIMIT = 200  # characters of one field kept before fitting: a name longer is cut anyway

# The brand (gateway/static/app.css).
GREEN = "#1f6f4a"
GREEN_DARK = "#14543a"
GREEN_LIGHT = "#e6f2eb"
INK = "#1b2a22"
MUTED = "#4d5c53"
LINE = "#cfdcd4"
BACKGROUND = "#f4f8f5"
WHITE = "#ffffff"

# Geometry: a white panel on the brand's background under a green band; the QR code sits
# at the panel's foot and the text flows from the top of the panel down to above it.
MARGIN = 60
PANEL_TOP, PANEL_BOTTOM = 380, HEIGHT - 70
PAD = 60
TEXT_LEFT, TEXT_WIDTH = MARGIN + PAD, WIDTH - 2 * (MARGIN + PAD)
QR_SIZE = 330
QR_TOP = PANEL_BOTTOM - PAD - QR_SIZE
LINE_HEIGHT = 1.3
ELLIPSIS = "…"

Measure = Callable[[str, int], float]  # (text, font size in px) -> width in px


# --- what the card shows: pure ------------------------------------------------------------

def clean(value: object, limit: int = TEXT_LIMIT) -> str:
    """Text fit to draw: control and format characters (bidi overrides, zero-width joiners
    and the like, which a name might carry) dropped, runs of whitespace one space."""
    text = "".join(" " if c.isspace() else c for c in str(value or "")
                   if not unicodedata.category(c).startswith("C") or c.isspace())
    return " ".join(text.split())[:limit]


def thousands(number: int) -> str:
    """``1234567`` → ``1,234,567`` (the same in Chinese and English)."""
    return f"{int(number):,}"


@dataclass(frozen=True)
class CardContent:
    number: str
    holder: str
    organization: str
    quantity_kg: int
    scene_zh: str
    scene_en: str
    project_zh: str
    project_en: str
    neutralisers: int       # people on the scene's board (or the platform's), 0 when none yet
    verify_url: str
    rank: int = 0           # the holder's place on that board, 0 while ranking has not recorded it

    @property
    def has_scene(self) -> bool:
        return bool(self.scene_zh or self.scene_en)

    def digest(self) -> str:
        """The content hash: the cache key and the ETag."""
        canonical = json.dumps({"v": DRAWING_VERSION, **asdict(self)}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def compose(cert: dict, scene: dict | None, neutralisers: int, holder: str, rank: int = 0) -> CardContent:
    """The card of a certificate's public view, its scene (the calculator's, or None), the
    count of its board and the holder's rank on it (0: unknown). ``holder`` is the name as
    shown in public (masked if so chosen)."""
    project = cert.get("project") or {}
    cert_scene = cert.get("scene") or {}
    scene = scene or {}
    scene_zh = clean(scene.get("name") or cert_scene.get("name"))
    scene_en = clean(scene.get("name_en") or cert_scene.get("name_en"))
    project_zh = clean(project.get("name"))
    project_en = clean(project.get("name_en"))
    return CardContent(
        number=clean(cert.get("number"), 64), holder=clean(holder),
        organization=clean(cert.get("organization")),
        quantity_kg=max(0, int(cert.get("quantity_kg") or 0)),
        scene_zh=scene_zh, scene_en="" if scene_en == scene_zh else scene_en,
        project_zh=project_zh, project_en="" if project_en == project_zh else project_en,
        neutralisers=max(0, int(neutralisers)), verify_url=str(cert.get("verify_url") or ""),
        rank=max(0, int(rank)))


def neutralisers_sentences(content: CardContent) -> tuple[str, str] | None:
    """(zh, en): the holder's rank among those carbon neutral on the scene's board (or the
    platform's), or how many they are while the rank is not known."""
    n = content.neutralisers
    if n <= 0:
        return None
    if 0 < content.rank <= n:
        rank, total = thousands(content.rank), thousands(n)
        if content.has_scene:
            return (f"本场第 {rank} 名 · 共 {total} 人完成碳中和",
                    f"No. {rank} of {total} carbon neutral at this event")
        return (f"点点第 {rank} 名 · 共 {total} 人完成碳中和",
                f"No. {rank} of {total} carbon neutral on Diandian")
    people = "1 person is" if n == 1 else f"{thousands(n)} people are"
    if content.has_scene:
        return f"本场已有 {thousands(n)} 人完成碳中和", f"{people} carbon neutral at this event"
    return f"点点上已有 {thousands(n)} 人完成碳中和", f"{people} carbon neutral on Diandian"


# --- fitting text: pure ---------------------------------------------------------------------

def _is_wide(character: str) -> bool:
    """A character a line may break before or after (CJK ideographs, kana, hangul, full-width)."""
    return unicodedata.east_asian_width(character) in ("W", "F")


def tokens(text: str) -> list[str]:
    """Units a line breaks between: each wide character alone, Latin words with their spaces."""
    found, word = [], ""
    for character in text:
        if _is_wide(character):
            if word:
                found.append(word)
                word = ""
            found.append(character)
        elif character == " ":
            word += " "
            found.append(word)
            word = ""
        else:
            word += character
    if word:
        found.append(word)
    return [token for token in found if token]


def wrap(text: str, measure: Measure, size: int, width: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` at ``size`` (a word wider than a
    line is broken between its characters)."""
    lines, line = [], ""
    for token in tokens(text):
        if measure((line + token).rstrip(), size) <= width:
            line += token
            continue
        if line.strip():
            lines.append(line.rstrip())
        line = ""
        for character in token:
            if line and measure((line + character).rstrip(), size) > width:
                lines.append(line.rstrip())
                line = ""
            line += character
        line = line.lstrip() if not lines else line
    if line.strip():
        lines.append(line.rstrip())
    return lines


def shorten(line: str, measure: Measure, size: int, width: float) -> str:
    """``line`` cut to end in an ellipsis within ``width``."""
    while line and measure(line + ELLIPSIS, size) > width:
        line = line[:-1].rstrip()
    return line + ELLIPSIS


@dataclass(frozen=True)
class Fitted:
    size: int
    lines: tuple[str, ...]


def fit(text: str, measure: Measure, sizes: tuple[int, ...], width: float, max_lines: int) -> Fitted:
    """The largest of ``sizes`` (largest first) at which ``text`` wraps into ``max_lines``;
    at the smallest, the lines that fit, the last cut with an ellipsis."""
    if not text:
        return Fitted(sizes[-1], ())
    for size in sizes:
        lines = wrap(text, measure, size, width)
        if len(lines) <= max_lines:
            return Fitted(size, tuple(lines))
    size = sizes[-1]
    lines = wrap(text, measure, size, width)
    return Fitted(size, (*lines[:max_lines - 1], shorten(lines[max_lines - 1], measure, size, width)))


# --- where everything goes: pure ----------------------------------------------------------

@dataclass(frozen=True)
class TextBlock:
    lines: tuple[str, ...]
    size: int
    fill: str
    x: int
    y: int
    width: int
    centred: bool = False

    @property
    def bottom(self) -> int:
        return self.y + round(len(self.lines) * self.size * LINE_HEIGHT)


@dataclass(frozen=True)
class Layout:
    texts: tuple[TextBlock, ...]
    rules: tuple[int, ...]                       # y of the thin lines between sections
    pill: tuple[int, int] | None                 # (top, bottom) of the count's background
    qr: tuple[int, int, int]                     # (x, y, size)


def _sizes(largest: int, smallest: int, step: int = 4) -> tuple[int, ...]:
    return tuple(range(largest, smallest - 1, -step))


# Scales tried in turn for the panel's text until it ends above the QR code's row.
SCALES = (1.0, 0.9, 0.8, 0.7, 0.6)
QR_GAP = 30


class _Placer:
    def __init__(self, measure: Measure, scale: float = 1.0):
        self.measure, self.scale = measure, scale
        self.texts: list[TextBlock] = []

    def add(self, text: str, largest: int, smallest: int, fill: str, y: int, max_lines: int = 1, *,
            centred: bool = False, x: int = TEXT_LEFT, width: int = TEXT_WIDTH) -> int:
        """Place ``text`` at ``y`` (sizes scaled); returns the y below it."""
        top, bottom = max(8, round(largest * self.scale)), max(8, round(smallest * self.scale))
        fitted = fit(text, self.measure, _sizes(top, min(top, bottom)), width, max_lines)
        if not fitted.lines:
            return y
        block = TextBlock(fitted.lines, fitted.size, fill, x, y, width, centred)
        self.texts.append(block)
        return block.bottom

    def gap(self, pixels: int) -> int:
        return round(pixels * self.scale)


def _panel(content: CardContent, measure: Measure, scale: float):
    """The panel's text from its top down: (blocks, rules, pill, bottom)."""
    place = _Placer(measure, scale)
    rules = []
    y = PANEL_TOP + place.gap(50)
    y = place.add(content.holder, 92, 52, INK, y, 2)
    y = place.add(content.organization, 40, 28, MUTED, y + place.gap(6))
    y = place.add(f"{thousands(content.quantity_kg)} kg", 150, 90, GREEN, y + place.gap(20))
    y = place.add("CO₂e 已中和 · neutralised", 38, 28, MUTED, y)
    pill = None
    sentences = neutralisers_sentences(content)
    if sentences:
        top = y + place.gap(28)
        y = place.add(sentences[0], 40, 26, GREEN_DARK, top + place.gap(20), centred=True)
        y = place.add(sentences[1], 30, 20, GREEN_DARK, y, centred=True)
        pill = (top, y + place.gap(20))
    y += place.gap(30)
    rules.append(y)
    y += place.gap(30)
    if content.has_scene:
        y = place.add("活动 · Event", 30, 22, MUTED, y)
        y = place.add(content.scene_zh, 48, 30, INK, y + place.gap(4), 2)
        y = place.add(content.scene_en, 34, 24, MUTED, y, 2)
        y += place.gap(24)
    y = place.add("减排项目 · Project", 30, 22, MUTED, y)
    y = place.add(content.project_zh, 44, 28, INK, y + place.gap(4), 2)
    y = place.add(content.project_en, 34, 24, MUTED, y, 2)
    return place.texts, rules, pill, y


def layout(content: CardContent, measure: Measure) -> Layout:
    """Every piece of text fitted and placed. Nothing reaches the QR code's row: long text
    shrinks, wraps (names onto two lines) and is cut with an ellipsis at its smallest size,
    and the whole panel is scaled down until it ends above the code."""
    band = _Placer(measure)
    band.add("点点 Diandian", 44, 44, GREEN_LIGHT, 80, centred=True, x=0, width=WIDTH)
    band.add("碳中和荣誉证书", 80, 56, WHITE, 150, centred=True, x=0, width=WIDTH)
    band.add("Carbon Neutral Certificate of Honour", 44, 32, GREEN_LIGHT, 268, centred=True, x=0,
             width=WIDTH)
    for scale in SCALES:
        texts, rules, pill, bottom = _panel(content, measure, scale)
        if bottom <= QR_TOP - QR_GAP:
            break
    beside = TEXT_LEFT + QR_SIZE + 40
    side = _Placer(measure)
    width = WIDTH - MARGIN - PAD - beside
    after = side.add("扫码验证真伪", 44, 30, INK, QR_TOP + 40, x=beside, width=width)
    after = side.add("Scan to verify", 34, 24, MUTED, after, x=beside, width=width)
    side.add(content.number, 28, 18, MUTED, after + 24, 2, x=beside, width=width)
    return Layout(tuple(band.texts + texts + side.texts), tuple(rules), pill, (TEXT_LEFT, QR_TOP, QR_SIZE))


# --- drawing: thin ---------------------------------------------------------------------------

@lru_cache(maxsize=1)
def font_source() -> fontconfig.FontSource | None:
    """The CJK font the certificate finds (diandian_common.fontconfig), once per process."""
    found = fontconfig.cjk_font()
    if found is None:
        log.warning("no Chinese font is installed: share cards show Chinese text as boxes")
    return found


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    source = font_source()
    if source is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(str(source.path), size, index=source.index)


def measure(text: str, size: int) -> float:
    return font(size).getlength(text)


def _qr_image(url: str, size: int) -> Image.Image:
    matrix = qr_code(url, border=2).get_matrix()
    modules = len(matrix)
    pixel = max(1, size // modules)  # whole pixels per module: crisp for any scanner
    image = Image.new("1", (modules, modules), 1)
    image.putdata([0 if dark else 1 for row in matrix for dark in row])
    drawn = image.resize((modules * pixel, modules * pixel), Image.NEAREST)
    framed = Image.new("RGB", (size, size), WHITE)
    offset = (size - drawn.width) // 2
    framed.paste(drawn.convert("RGB"), (offset, offset))
    return framed


def draw(content: CardContent) -> bytes:
    """The card as PNG bytes."""
    placed = layout(content, measure)
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    pen = ImageDraw.Draw(image)
    pen.rectangle((0, 0, WIDTH, PANEL_TOP + 120), fill=GREEN)
    pen.rounded_rectangle((MARGIN, PANEL_TOP, WIDTH - MARGIN, PANEL_BOTTOM), radius=36, fill=WHITE)
    for y in placed.rules:
        pen.line((TEXT_LEFT, y, TEXT_LEFT + TEXT_WIDTH, y), fill=LINE, width=3)
    if placed.pill:
        top, bottom = placed.pill
        pen.rounded_rectangle((TEXT_LEFT, top, TEXT_LEFT + TEXT_WIDTH, bottom), radius=28, fill=GREEN_LIGHT)
    for block in placed.texts:
        typeface = font(block.size)
        for number, line in enumerate(block.lines):
            y = block.y + round(number * block.size * LINE_HEIGHT)
            x = block.x
            if block.centred:
                x = block.x + round((block.width - typeface.getlength(line)) / 2)
            pen.text((x, y), line, font=typeface, fill=block.fill)
    qr_x, qr_y, qr_size = placed.qr
    if content.verify_url:
        image.paste(_qr_image(content.verify_url, qr_size), (qr_x, qr_y))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=6)
    return out.getvalue()


class CardCache:
    """Rendered cards by content hash, the least recently used dropped first. One render at
    a time: a share storm on one card renders it once, the others find it here."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self.cards: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()
        self.render_lock = threading.Lock()
        self.renders = 0

    def _cached(self, key: str) -> bytes | None:
        with self.lock:
            png = self.cards.get(key)
            if png is not None:
                self.cards.move_to_end(key)
            return png

    def get(self, content: CardContent) -> bytes:
        key = content.digest()
        png = self._cached(key)
        if png is not None:
            return png
        with self.render_lock:
            png = self._cached(key)
            if png is not None:
                return png
            started = time.perf_counter()
            png = draw(content)
            self.renders += 1
            log.info("drew share card %s in %.0f ms", content.number, (time.perf_counter() - started) * 1000)
        with self.lock:
            self.cards[key] = png
            while len(self.cards) > self.size:
                self.cards.popitem(last=False)
        return png


# --- reading the services and answering ---------------------------------------------------

def _unavailable(what: str) -> ApiError:
    return ApiError(503, "service_unavailable", f"{what} is unavailable; try again shortly",
                    headers={"Retry-After": RETRY_AFTER_S})


def _read(service: str, path: str, params: dict | None = None):
    reply = reader().get(service, path, params)
    if reply.status >= 500 or (reply.status == 200 and reply.body is None):
        raise _unavailable(f"the {service} service")
    return reply


def _verify_code(verify_url: str) -> str:
    return verify_url.rstrip("/").rsplit("/", 1)[-1]


def content_for(certificate_id: str) -> CardContent:
    """Read what the card shows; ApiError for an unknown or revoked certificate or a service down."""
    if not CERTIFICATE_ID.fullmatch(certificate_id):
        raise ApiError(404, "not_found", "no certificate has this id")
    cert_reply = _read("certificates", f"/api/v1/certificates/{segment(certificate_id)}")
    if not cert_reply.ok:
        raise ApiError(404, "not_found", "no certificate has this id")
    cert = cert_reply.body
    if cert.get("status") == "revoked":
        raise ApiError(410, "certificate_revoked", "this certificate has been revoked and is not shared")
    holder = cert.get("holder") or ""
    if cert.get("holder_masked") and cert.get("verify_url"):
        # The holder chose to appear masked in public: the name as every verification shows it.
        code = segment(_verify_code(cert["verify_url"]))
        masked = _read("certificates", f"/api/v1/certificates/verify/{code}", {"mask_holder": "true"})
        if not masked.ok:
            raise _unavailable("the certificates service")
        holder = (masked.body.get("certificate") or {}).get("holder") or ""
    slug = (cert.get("scene") or {}).get("slug")
    scene = None
    if slug:
        scene_reply = _read("calculator", f"/api/v1/scenes/{segment(slug)}")
        scene = scene_reply.body if scene_reply.ok else None  # a scene since removed: the certificate's name
    params = {"board": "individual", "period": "all", "limit": 1, **({"scene": slug} if slug else {})}
    board = _read("ranking", "/api/v1/rankings", params)
    total = int((board.body or {}).get("total") or 0) if board.ok else 0
    rank = 0
    if cert.get("order_id"):
        standing = _read("ranking", f"/api/v1/rankings/orders/{segment(cert['order_id'])}",
                         {"scene": slug} if slug else None)
        if standing.ok:   # 404: not on the board yet (or revoked there): the count alone
            rank = int(standing.body.get("rank") or 0)
            total = int(standing.body.get("total") or total)
    return compose(cert, scene, total, holder, rank)


def card_response(certificate_id: str) -> Response:
    content = content_for(certificate_id)
    etag = content.digest()
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": f'"{etag}"', "X-Content-Type-Options": "nosniff"}
    if etag in request.if_none_match:
        return Response(status=304, headers=headers)
    png = current_cache().get(content)
    return Response(png, mimetype="image/png", headers=headers)


_CACHE = CardCache()


def current_cache() -> CardCache:
    return _CACHE


def register(app: Flask) -> None:
    """The route, before the proxy (a more specific rule than /api/v1/<path>); GET and HEAD only."""
    @app.get(ROUTE)
    def certificate_card(certificate_id):
        return card_response(certificate_id)

    @app.route(ROUTE, methods=["POST", "PUT", "PATCH", "DELETE"], endpoint="certificate_card_refused")
    def refused(certificate_id):
        raise ApiError(405, "method_not_allowed", "the share card is read only: GET or HEAD",
                       headers={"Allow": "GET, HEAD"})


# The route as the gateway's OpenAPI document describes it (gateway.openapi.merge adds it).
OPENAPI_PATH = "/api/v1/certificates/{certificate_id}/card.png"
OPENAPI_OPERATION = {
    "tags": ["certificates"],
    "operationId": "get_certificate_card",
    "summary": "The certificate's share card: a 1080×1920 portrait PNG for phones",
    "description": (
        "Composed by the gateway from the certificate's public view, its scene and the scene's board: "
        "the holder (masked when the holder chose so), the kilograms neutralised, the scene's and the "
        "project's names in Chinese and English, the holder's rank among those carbon neutral on the "
        "scene's board (the platform's without a scene; read by the certificate's order, so no "
        "participant id is ever shown; the board's size alone until ranking has recorded the order), "
        "and the QR code of `verify_url`. Public; `ETag` is the hash of what the card "
        "shows (`If-None-Match` answers 304); `Cache-Control: public, max-age=300`."),
    "parameters": [{"name": "certificate_id", "in": "path", "required": True, "schema": {"type": "string"}}],
    "responses": {
        "200": {"description": "The card", "content": {"image/png": {"schema": {"type": "string",
                                                                                 "format": "binary"}}}},
        "304": {"description": "Not modified (If-None-Match matched the ETag)"},
        "404": {"description": "`not_found`: no certificate has this id (or it cannot be one)", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "410": {"description": "`certificate_revoked`: a revoked certificate is not shared", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "503": {"description": "`service_unavailable`: a service the card reads did not answer", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    },
}
