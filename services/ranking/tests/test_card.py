"""The shareable rank card: text fitting and escaping (pure), and the card.svg endpoint."""
from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings, strategies as st

from ranking import tasks
from ranking.app import create_app
from ranking.domain.card import (HEIGHT, TEXT_WIDTH, WIDTH, Card, clean_text, fit_lines, format_kg, render_card,
                                 sentence, text_width)
from ranking.domain.periods import Period
from ranking.tests.helpers import minutes_before, order

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[str]:
    """The visible lines of a card, as a viewer would read them."""
    root = ET.fromstring(svg.encode())
    return ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]


def card(**changes) -> Card:
    values = dict(rank=12, total=3456, grams=13_000, display_name="张*", period=Period.WEEK,
                  scene_name="第一届中国数字碳中和高峰论坛", lang="zh")
    return Card(**{**values, **changes})


# --- pure ---------------------------------------------------------------------------

def test_the_chinese_card_reads_as_its_sentence():
    svg = render_card(card())
    assert texts(svg) == ["点点碳中和 · Diandian", "我是第 12 名", "共 3,456 人 · 本周榜", "第一届中国数字碳中和高峰论坛",
                          "张* · 已中和 13 kg CO2e"]
    root = ET.fromstring(svg.encode())
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("1200", "630", "0 0 1200 630")
    assert root.find(f"{SVG}title").text == "我是第 12 名，共 3,456 人 · 第一届中国数字碳中和高峰论坛"


def test_the_english_card_and_the_global_board():
    assert texts(render_card(card(lang="en", rank=1234, total=1_000_000, grams=1_125, period=Period.ALL,
                                  display_name="Alice W***", scene_name="First China Digital Forum"))) == [
        "点点碳中和 · Diandian", "I am No. 1,234", "of 1,000,000 · all time", "at First China Digital Forum",
        "Alice W*** · 1.125 kg CO2e neutralised"]
    assert sentence(card(lang="en", scene_name=None)) == "I am No. 12 of 3,456 on Diandian"
    assert texts(render_card(card(scene_name=None, period=Period.DAY)))[2:4] == ["共 3,456 人 · 今日榜", "点点碳中和全站"]


def test_outside_text_is_escaped_and_cannot_add_markup():
    hostile = '</text><script>alert(1)</script><image href="https://evil.example/x.png"/> & "q" \'s'
    svg = render_card(card(scene_name=hostile, display_name="<b>Eve</b>", lang="en"))
    root = ET.fromstring(svg.encode())   # still well-formed
    assert [element.tag for element in root.iter()].count(f"{SVG}script") == 0
    assert not [element for element in root.iter() if element.tag == f"{SVG}image"]
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert "".join(texts(svg)[3:5]).startswith('at </text><script>alert(1)</script>')
    assert texts(svg)[-1].startswith("<b>Eve</b> · ")


def test_the_card_references_nothing_outside_itself():
    svg = render_card(card(scene_name="https://example.com/@import url(x)", lang="en"))
    root = ET.fromstring(svg.encode())
    for element in root.iter():
        for name, value in element.attrib.items():
            assert "href" not in name, (element.tag, name)
            assert "//" not in value and "@import" not in value, (element.tag, name, value)
    assert {element.tag.removeprefix(SVG) for element in root.iter()} <= {
        "svg", "title", "defs", "linearGradient", "stop", "rect", "circle", "g", "text", "tspan"}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120), st.text(max_size=100), st.sampled_from(["zh", "en"]))
def test_any_text_gives_a_well_formed_card(scene_name, display_name, lang):
    svg = render_card(card(scene_name=scene_name or None, display_name=display_name, lang=lang))
    ET.fromstring(svg.encode())


def test_characters_xml_cannot_carry_are_dropped():
    assert clean_text("A\x00B\x1bC\ufffeD\ud800E  \t F") == "ABCDE F"
    assert clean_text("Ｆｕｌｌｗｉｄｔｈ") == "Fullwidth"   # NFKC, as display names are


def test_long_text_wraps_at_spaces_and_ends_with_an_ellipsis():
    lines = fit_lines("First China Digital Carbon Neutrality Forum of the Year", 44, 600, 2)
    assert lines == ["First China Digital", "Carbon Neutrality Forum…"]
    assert all(text_width(line, 44) <= 600 for line in lines)
    assert fit_lines("短名", 44, 600, 2) == ["短名"]


def test_chinese_wraps_between_any_two_characters_and_long_words_are_cut():
    lines = fit_lines("第一届中国数字碳中和高峰论坛暨成都国际可持续发展博览会", 44, 440, 2)
    assert lines[0] == "第一届中国数字碳中和" and lines[1].endswith("…") and len(lines[1]) == 10
    assert fit_lines("x" * 50, 10, 58, 3) == ["x" * 10, "x" * 10, "x" * 9 + "…"]


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=150), st.integers(1, 4))
def test_fitted_lines_always_fit(text, max_lines):
    lines = fit_lines(clean_text(text), 44, TEXT_WIDTH, max_lines)
    assert len(lines) <= max_lines
    assert all(text_width(line, 44) <= TEXT_WIDTH for line in lines)


@pytest.mark.parametrize("grams,shown", [(13_000, "13"), (1_125, "1.125"), (5_500, "5.5"), (1, "0.001"),
                                         (1_234_567_890, "1,234,567.89")])
def test_kilograms_are_shown_without_needless_decimals(grams, shown):
    assert format_kg(grams) == shown


def test_a_card_needs_a_real_rank_and_language():
    with pytest.raises(ValueError):
        card(rank=5, total=4)
    with pytest.raises(ValueError):
        card(lang="fr")


def test_the_card_renders_with_real_fonts():
    """Rasterised the way a page would (WeasyPrint, then PDFium): green card, white text."""
    import pypdfium2
    import weasyprint
    data = base64.b64encode(render_card(card()).encode()).decode()
    html = (f"<style>@page {{size: {WIDTH}px {HEIGHT}px; margin: 0}} body {{margin: 0}}</style>"
            f'<img style="display: block; width: {WIDTH}px; height: {HEIGHT}px" '
            f'src="data:image/svg+xml;base64,{data}">')
    image = pypdfium2.PdfDocument(weasyprint.HTML(string=html).write_pdf())[0].render(scale=1).to_pil()
    image = image.convert("RGB").resize((WIDTH, HEIGHT))
    red, green, blue = image.getpixel((20, 20))
    assert green > red + 40 and green > blue + 20          # the gradient's dark green corner
    headline = image.crop((80, 140, 700, 240))            # "我是第 12 名"
    white = headline.convert("L").point(lambda v: 255 if v > 200 else 0).histogram()[255]
    assert white > 2_000


# --- the endpoint -------------------------------------------------------------------

@pytest.fixture
def client(env, redis_client, now):
    for i, (participant, kg) in enumerate([("alice", 30), ("bob", 20), ("carol", 13)]):
        tasks.record.run(order(f"o-{i}", participant, kg, minutes_before(now, 10 + i),
                               name="张三" if participant == "carol" else participant.title(),
                               mask=participant == "carol"))
    return create_app(database_url=env).test_client()


def test_card_of_a_participant_on_a_scene_board(client):
    response = client.get("/api/v1/rankings/participants/carol/card.svg",
                          query_string={"scene": "forum-2025", "period": "week", "lang": "zh",
                                        "scene_name": "第一届中国数字碳中和高峰论坛"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert texts(response.get_data(as_text=True))[1:] == [
        "我是第 3 名", "共 3 人 · 本周榜", "第一届中国数字碳中和高峰论坛", "张* · 已中和 13 kg CO2e"]


def test_card_defaults_to_chinese_and_the_global_all_time_board(client):
    response = client.get("/api/v1/rankings/participants/alice/card.svg?lang=en")
    assert texts(response.get_data(as_text=True))[1:] == [
        "I am No. 1", "of 3 · all time", "on Diandian", "Alice · 30 kg CO2e neutralised"]
    assert texts(client.get("/api/v1/rankings/participants/alice/card.svg").get_data(as_text=True))[1] == "我是第 1 名"


def test_a_hostile_scene_name_is_escaped_in_the_card(client):
    response = client.get("/api/v1/rankings/participants/bob/card.svg",
                          query_string={"scene": "forum-2025", "lang": "en",
                                        "scene_name": "<script>alert('x')</script>"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<script" not in body
    assert texts(body)[3] == "at <script>alert('x')</script>"


@pytest.mark.parametrize("query,field", [({"lang": "fr"}, "lang"),
                                         ({"scene": "forum-2025", "scene_name": "x" * 121}, "scene_name"),
                                         ({"scene_name": "A forum"}, "scene_name"),
                                         ({"period": "year"}, "period")])
def test_invalid_card_queries_are_422(client, query, field):
    response = client.get("/api/v1/rankings/participants/bob/card.svg", query_string=query)
    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == [field]


def test_no_card_for_a_participant_not_on_the_board(client):
    response = client.get("/api/v1/rankings/participants/nobody/card.svg")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/rankings/participants/bob/card.svg?scene=west-lake").status_code == 404


def test_openapi_documents_the_card(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    card_path = paths["/api/v1/rankings/participants/{participant_id}/card.svg"]["get"]
    assert "image/svg+xml" in card_path["responses"]["200"]["content"]
    assert {p["name"] for p in card_path["parameters"]} >= {"scene", "period", "lang", "scene_name"}
