"""The certificate's share card (GET /api/v1/certificates/<id>/card.png): its pure layout, and the
real gateway composing it from stand-in services (gateway/tests/pages_support.py)."""
from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from gateway import share_card
from gateway.share_card import (
    HEIGHT,
    QR_GAP,
    QR_TOP,
    TEXT_WIDTH,
    WIDTH,
    CardCache,
    CardContent,
    clean,
    compose,
    fit,
    layout,
    neutralisers_sentences,
    thousands,
    tokens,
    wrap,
)
from gateway.tests.pages_support import CERTIFICATE, HOSTILE, SCENE

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD = "/api/v1/certificates/cert_1/card.png"


def monospace(text: str, size: int) -> float:
    """A stand-in measure: wide (CJK) characters a full em, others 0.6 em."""
    return sum(size if share_card._is_wide(c) else 0.6 * size for c in text)


def content(**changes) -> CardContent:
    base = dict(number="DD-20250907-ABCD", holder="张三", organization="", quantity_kg=534,
                scene_zh="绿色论坛", scene_en="Green Forum", project_zh="成都公交电动化",
                project_en="Chengdu electric buses", neutralisers=3456,
                verify_url="https://diandian.example/v/CODE.sig")
    return CardContent(**{**base, **changes})


# --- pure: text ------------------------------------------------------------------------------

class TestText:
    def test_thousands(self):
        assert thousands(0) == "0"
        assert thousands(534) == "534"
        assert thousands(1234567) == "1,234,567"

    def test_clean_drops_controls_and_bidi_overrides_and_folds_whitespace(self):
        assert clean("王\u202e五\x00\x07  Li\tLei\n") == "王五 Li Lei"
        assert clean("a" * 500) == "a" * 200
        assert clean(None) == ""

    def test_tokens_break_around_each_wide_character_and_between_words(self):
        assert tokens("张三 Zhang San") == ["张", "三", " ", "Zhang ", "San"]

    def test_wrap_keeps_words_whole_and_lines_within_the_width(self):
        lines = wrap("Chengdu electric bus fleet", monospace, 10, 100)
        assert lines == ["Chengdu electric", "bus fleet"]
        assert all(monospace(line, 10) <= 100 for line in lines)

    def test_a_word_wider_than_a_line_is_broken_between_characters(self):
        lines = wrap("x" * 30, monospace, 10, 60)
        assert lines == ["x" * 10, "x" * 10, "x" * 10]

    def test_chinese_breaks_between_any_two_characters(self):
        assert wrap("四川省成都市公交车电动化", monospace, 10, 50) == ["四川省成都", "市公交车电", "动化"]

    def test_fit_takes_the_largest_size_that_fits(self):
        fitted = fit("张三", monospace, (100, 80, 60), 170, 1)
        assert fitted.size == 80 and fitted.lines == ("张三",)

    def test_fit_cuts_what_never_fits_with_an_ellipsis(self):
        fitted = fit("长" * 100, monospace, (40, 30), 300, 2)
        assert fitted.size == 30 and len(fitted.lines) == 2 and fitted.lines[-1].endswith("…")
        assert all(monospace(line, 30) <= 300 for line in fitted.lines)

    def test_nothing_to_fit_is_no_lines(self):
        assert fit("", monospace, (40,), 300, 2).lines == ()


# --- pure: what the card shows ---------------------------------------------------------------

class TestCompose:
    def test_both_languages_of_scene_and_project(self):
        card = compose(CERTIFICATE, SCENE, 3456, "王*")
        assert card.holder == "王*"
        assert (card.scene_zh, card.scene_en) == ("绿色论坛 <i>2025</i>", "Green Forum")
        assert card.project_zh == CERTIFICATE["project"]["name"]
        assert card.quantity_kg == 534 and card.neutralisers == 3456

    def test_without_the_calculators_scene_the_certificates_name(self):
        card = compose(CERTIFICATE, None, 1, "x")
        assert (card.scene_zh, card.scene_en) == (SCENE["name"], "")

    def test_an_english_name_equal_to_the_chinese_is_shown_once(self):
        card = compose({**CERTIFICATE, "project": {"name": "Solar", "name_en": "Solar"}}, None, 1, "x")
        assert card.project_en == ""

    def test_the_count_sentence_for_a_scene_and_for_the_platform(self):
        assert neutralisers_sentences(content(neutralisers=3456)) == (
            "本场已有 3,456 人完成碳中和", "3,456 people are carbon neutral at this event")
        assert neutralisers_sentences(content(scene_zh="", scene_en="", neutralisers=1)) == (
            "点点上已有 1 人完成碳中和", "1 person is carbon neutral on Diandian")
        assert neutralisers_sentences(content(neutralisers=0)) is None

    def test_the_holders_rank_when_ranking_knows_it(self):
        assert neutralisers_sentences(content(neutralisers=3456, rank=12)) == (
            "本场第 12 名 · 共 3,456 人完成碳中和", "No. 12 of 3,456 carbon neutral at this event")
        assert neutralisers_sentences(content(scene_zh="", scene_en="", neutralisers=2, rank=1)) == (
            "点点第 1 名 · 共 2 人完成碳中和", "No. 1 of 2 carbon neutral on Diandian")
        # A rank beyond the count (a board read between two writes) is not printed.
        assert neutralisers_sentences(content(neutralisers=3, rank=4))[0] == "本场已有 3 人完成碳中和"
        assert compose(CERTIFICATE, SCENE, 10, "x", rank=3).rank == 3
        assert content(rank=1).digest() != content(rank=2).digest()

    def test_the_digest_changes_with_what_is_shown(self):
        assert content().digest() == content().digest()
        assert content().digest() != content(quantity_kg=535).digest()
        assert content().digest() != content(neutralisers=3457).digest()


# --- pure: layout ----------------------------------------------------------------------------

def overlaps(a, b) -> bool:
    return a.y < b.bottom and b.y < a.bottom and a.x < b.x + b.width and b.x < a.x + a.width


class TestLayout:
    @pytest.mark.parametrize("card", [
        content(),
        content(holder="Maximilian Alexander von Habsburg-Lothringen-Wittelsbach " * 3,
                organization="Organisation " * 20, quantity_kg=123_456_789,
                scene_zh="很长的活动名称" * 10, scene_en="A very long event name " * 10,
                project_zh="很长的项目名称" * 10, project_en="A very long project name " * 10),
        content(holder="张" * 200, scene_zh="", scene_en=""),
    ])
    def test_text_stays_within_the_panel_and_above_the_qr_code(self, card):
        placed = layout(card, monospace)
        panel = [b for b in placed.texts if share_card.PANEL_TOP <= b.y < QR_TOP]
        assert panel, "the panel shows nothing"
        assert max(b.bottom for b in panel) <= QR_TOP - QR_GAP
        for block in placed.texts:
            assert block.x >= 0 and block.x + block.width <= WIDTH and block.bottom <= HEIGHT
            assert all(monospace(line, block.size) <= block.width for line in block.lines), block
        for i, a in enumerate(placed.texts):
            for b in placed.texts[i + 1:]:
                assert not overlaps(a, b), (a, b)

    def test_a_short_name_is_large(self):
        holder = layout(content(), monospace).texts[3]
        assert holder.lines == ("张三",) and holder.size >= 90

    def test_a_long_name_takes_two_lines(self):
        name = "Maximilian Alexander Habsburg"
        holder = next(b for b in layout(content(holder=name), monospace).texts if "Maximilian" in b.lines[0])
        assert " ".join(holder.lines) == name and len(holder.lines) == 2
        assert all(monospace(line, holder.size) <= TEXT_WIDTH for line in holder.lines)


# --- the drawing, with the machine's font ---------------------------------------------------

def test_the_drawing_is_a_1080_by_1920_png_and_renders_in_reasonable_time():
    card = content(holder="王小明 Wang Xiaoming", organization="点点科技")
    share_card.font(40)  # the font loaded once per process, as a running gateway has it
    started = time.perf_counter()
    png = share_card.draw(card)
    elapsed = time.perf_counter() - started
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    assert image.size == (WIDTH, HEIGHT) and image.mode == "RGB"
    assert elapsed < 3.0, f"one card took {elapsed:.2f} s"
    # The brand's green band at the top, the white panel under the name.
    assert image.getpixel((10, 10)) == (0x1F, 0x6F, 0x4A)
    assert image.getpixel((WIDTH // 2, QR_TOP - 10)) == (255, 255, 255)


def test_the_card_draws_its_chinese_with_the_cjk_font_the_certificate_finds():
    """Whatever Chinese font fontconfig has (Droid Sans Fallback alone on a fresh machine)
    covers every Chinese character the card prints; the gateway finds it as certificates does."""
    from fontTools.ttLib import TTFont

    from diandian_common import fontconfig

    source = share_card.font_source()
    if source is None:
        pytest.skip("no Chinese font installed")
    assert source == fontconfig.cjk_font()
    covered = TTFont(source.path, fontNumber=source.index).getBestCmap()
    printed = "点点碳中和荣誉证书已活动减排项目扫码验证真伪本场有人完成上张三"
    assert [c for c in printed if ord(c) not in covered] == []


def test_the_cache_renders_a_card_once_and_keeps_only_the_most_recent():
    cache = CardCache(size=2)
    first = cache.get(content())
    assert cache.get(content()) is first and cache.renders == 1
    cache.get(content(quantity_kg=1))
    cache.get(content(quantity_kg=2))
    assert content().digest() not in cache.cards and cache.renders == 3


# --- the route, through the real gateway -----------------------------------------------------

@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    monkeypatch.setattr(share_card, "_CACHE", CardCache())


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) >= {"code", "message"}
    return error


def test_the_card_is_a_portrait_png_with_etag_and_short_public_cache(client, services):
    response = client.get(CARD)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "image/png"
    assert response.data.startswith(PNG_SIGNATURE)
    assert Image.open(io.BytesIO(response.data)).size == (1080, 1920)
    assert response.headers["Cache-Control"] == "public, max-age=300"
    etag = response.headers["ETag"]
    assert etag.startswith('"') and len(etag) > 10
    # It read the scene's board size, never a participant.
    board = [r for r in services["ranking"].requests if r["path"] == "/api/v1/rankings"]
    assert board and board[-1]["args"]["scene"] == "forum"
    assert not [r for r in services["ranking"].requests if "/participants/" in r["path"]]
    assert not services["orders"].requests


def test_if_none_match_answers_304_without_a_body(client):
    etag = client.get(CARD).headers["ETag"]
    again = client.get(CARD, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    assert client.get(CARD, headers={"If-None-Match": '"other"'}).status_code == 200


def test_head_answers_the_headers(client):
    response = client.head(CARD)
    assert response.status_code == 200 and response.mimetype == "image/png"


def test_a_share_storm_renders_once(client):
    for _ in range(5):
        assert client.get(CARD).status_code == 200
    assert share_card.current_cache().renders == 1


def test_a_new_count_is_a_new_card(client, services):
    first = client.get(CARD).headers["ETag"]
    services["ranking"].on("GET", "/api/v1/rankings", (200, {"items": [], "total": 3457}))
    assert client.get(CARD).headers["ETag"] != first


def test_the_holders_rank_is_read_by_the_certificates_order_never_by_participant(client, services):
    unranked = client.get(CARD).headers["ETag"]   # the fake ranking does not know the order: the count
    services["ranking"].on("GET", "/api/v1/rankings/orders/ord_done",
                           (200, {"order_id": "ord_done", "scene": "forum", "period": "all", "rank": 2,
                                  "total": 3456}))
    response = client.get(CARD)
    assert response.status_code == 200 and response.headers["ETag"] != unranked
    asked = [r for r in services["ranking"].requests if r["path"] == "/api/v1/rankings/orders/ord_done"]
    assert asked and asked[-1]["args"]["scene"] == "forum"
    assert not [r for r in services["ranking"].requests if "/participants/" in r["path"]]


def test_a_holder_who_chose_to_be_masked_is_masked(client, services):
    services["certificates"].on("GET", "/api/v1/certificates/cert_1",
                                (200, {**CERTIFICATE, "holder_masked": True}))
    assert client.get(CARD).status_code == 200
    asked = [r for r in services["certificates"].requests if "/verify/" in r["path"]]
    assert asked and asked[-1]["path"] == "/api/v1/certificates/verify/CODE.sig"
    assert asked[-1]["args"] == {"mask_holder": "true"}
    # What the card shows is the masked name (what the service's verification answers).
    with client.application.test_request_context(CARD):
        client.application.preprocess_request()
        assert share_card.content_for("cert_1").holder == "<***"


def test_unknown_id_is_404_json(client):
    assert error_of(client.get("/api/v1/certificates/nope/card.png"), 404)["code"] == "not_found"


@pytest.mark.parametrize("hostile", [
    "a" * 65, "%E5%BC%A0", "x%20y", "x'y", "%3Cscript%3E", "%EF%BF%BF", "%E2%80%AE",
])
def test_hostile_ids_are_refused_with_json(client, services, hostile):
    response = client.get(f"/api/v1/certificates/{hostile}/card.png")
    assert 400 <= response.status_code < 500
    assert response.mimetype == "application/json" and "error" in response.get_json()
    # Refused before the certificates service is asked.
    assert not [r for r in services["certificates"].requests if r["path"].endswith("card.png")]


def test_control_characters_in_the_id_are_refused(client):
    response = client.get("/api/v1/certificates/a%00b/card.png")
    assert 400 <= response.status_code < 500 and "error" in response.get_json()


def test_a_revoked_certificate_is_not_shared(client, services):
    services["certificates"].on("GET", "/api/v1/certificates/cert_1",
                                (200, {**CERTIFICATE, "status": "revoked",
                                       "revoked_at": "2025-09-08T00:00:00+00:00"}))
    assert error_of(client.get(CARD), 410)["code"] == "certificate_revoked"


@pytest.mark.parametrize("service", ["certificates", "calculator", "ranking"])
def test_a_service_down_is_503_json(client, services, service):
    services[service].stop()
    response = client.get(CARD)
    assert error_of(response, 503)["code"] == "service_unavailable"
    assert response.headers["Retry-After"]


def test_a_service_failing_is_503_json(client, services):
    services["certificates"].on("GET", "/api/v1/certificates/cert_1",
                                (500, {"error": {"code": "internal_error", "message": "x"}}))
    assert error_of(client.get(CARD), 503)["code"] == "service_unavailable"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_only_get_and_head(client, method):
    response = client.open(CARD, method=method)
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, HEAD"


def test_other_certificate_paths_are_still_proxied(client, services):
    assert client.get("/api/v1/certificates/cert_1").get_json()["holder"] == HOSTILE
    assert services["certificates"].requests[-1]["path"] == "/api/v1/certificates/cert_1"
