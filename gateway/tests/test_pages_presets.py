"""What the trip form starts from by scene type (gateway/pages_presets.py, pure) and the form
the gateway renders from it: open sections, heading, nights, destination airport, steppers,
airport fields, icons."""
from __future__ import annotations

from datetime import date

import pytest

from gateway import pages_presets as presets
from gateway.tests.pages_support import SCENE, Markup, page

ALL = ["flight", "rail", "car", "bus", "metro", "taxi", "hotel", "meal"]


class TestPresets:
    @pytest.mark.parametrize("scene_type, opened", [
        ("conference", ["flight", "hotel"]),
        ("scenic_spot", ["car", "rail"]),
        ("supermarket", ["car"]),
        ("restaurant", ["meal"]),
        ("hotel", ["hotel", "flight"]),
        ("a-type-from-the-future", ["flight", "hotel"]),
        (None, ["flight", "hotel"]),
    ])
    def test_each_type_opens_its_likely_sections(self, scene_type, opened):
        assert presets.open_sections(scene_type, ALL) == opened

    def test_only_sections_the_form_has_are_opened(self):
        assert presets.open_sections("scenic_spot", ["rail", "bus"]) == ["rail"]
        assert presets.open_sections("restaurant", ["car"]) == []

    def test_opened_sections_come_first_the_rest_in_the_scene_order(self):
        assert presets.section_order("scenic_spot", ["flight", "rail", "car", "bus"]) == [
            "car", "rail", "flight", "bus"]
        assert presets.section_order("restaurant", ["meal"]) == ["meal"]

    @pytest.mark.parametrize("scene_type, kind", [
        ("conference", "attend"), ("supermarket", "visit"), ("restaurant", "visit"),
        ("scenic_spot", "visit"), ("hotel", "visit"), (None, "visit")])
    def test_one_attends_a_conference_and_visits_the_rest(self, scene_type, kind):
        assert presets.heading_kind(scene_type) == kind

    @pytest.mark.parametrize("starts, ends, nights", [
        (None, None, 1),
        ("2021-09-07", None, 1),
        ("2021-09-07", "2021-09-07", 1),
        ("2021-09-07", "2021-09-09", 2),
        (date(2021, 9, 7), date(2021, 9, 8), 1),
        ("2021-09-09", "2021-09-07", 1),       # ends before it starts: not believed
        ("2021-01-01", "2021-12-31", 14),      # a season is not a stay
        ("not a date", "2021-09-09", 1),
    ])
    def test_proposed_nights(self, starts, ends, nights):
        assert presets.proposed_nights({"starts_on": starts, "ends_on": ends}) == nights

    def test_destination_airport_from_the_province_then_the_location(self):
        assert presets.destination_airport({"province": "CN-SC"}, "zh") == "成都 (CTU)"
        assert presets.destination_airport({"province": "CN-SC"}, "en") == "Chengdu (CTU)"
        assert presets.destination_airport({"location": "四川省成都市都江堰市"}, "en") == "Chengdu (CTU)"
        assert presets.destination_airport({"location": "Pudong, Shanghai"}, "zh") == "上海 (PVG)"
        assert presets.destination_airport({"location": "somewhere"}, "zh") is None
        assert presets.destination_airport({}, "zh") is None
        assert presets.destination_airport({"province": "CN-XX", "location": None}, "zh") is None

    def test_every_province_has_an_airport(self):
        from gateway.pages_forms import PROVINCES

        assert sorted(presets.PROVINCE_AIRPORTS) == sorted(code for code, _, _ in PROVINCES)
        assert all(len(code) == 3 and code.isupper() for code, _, _ in presets.PROVINCE_AIRPORTS.values())


def _details(markup: Markup) -> list[dict]:
    return [a for a in markup.find("details") if "activity-toggle" in a.get("class", "")]


def test_a_conference_form_opens_flight_and_hotel_with_its_defaults(client):
    html = page(client, "/s/forum/form")
    markup = Markup(html)
    assert "你参加绿色论坛 &lt;i&gt;2025&lt;/i&gt;的行程" in html
    opened = [a for a in _details(markup) if "open" in a]
    assert len(opened) == 2
    inputs = {a["id"]: a for a in markup.find("input") if "id" in a}
    # The destination from the scene's location, the way a chosen airport reads; not what
    # includes a flight ("from" does).
    assert inputs["a-flight-to"]["value"] == "成都 (CTU)" and "data-primary" not in inputs["a-flight-to"]
    assert inputs["a-flight-from"]["data-kind"] == "airport" and "pattern" not in inputs["a-flight-from"]
    assert "checked" in inputs["a-flight-round_trip"]
    assert inputs["a-hotel-nights"]["value"] == "1" and inputs["a-hotel-nights"]["min"] == "0"
    steps = [b for b in markup.find("button") if b.get("aria-controls") == "a-hotel-nights"]
    assert [b["aria-label"] for b in steps] == ["晚数：减一", "晚数：加一"]
    assert all("hidden" in b for b in steps)          # shown by app.js, which makes them work
    assert inputs["a-flight-party_size"]["value"] == "1"
    assert len(markup.find("svg", **{"class": "icon"})) == 10   # one icon per section
    en = page(client, "/s/forum/form", lang="en")
    assert "Your trip to Green Forum" in en and 'value="Chengdu (CTU)"' in en


@pytest.mark.parametrize("scene_type, heading, opened", [
    ("supermarket", "你去绿色论坛", ["car"]),
    ("scenic_spot", "你去绿色论坛", ["car", "rail"]),
    ("restaurant", "你去绿色论坛", ["meal"]),
])
def test_other_scenes_are_visited_and_open_their_sections(client, services, scene_type, heading, opened):
    form = {"supermarket": ["car", "bus", "metro", "taxi"], "restaurant": ["meal"],
            "scenic_spot": ["flight", "rail", "car", "bus", "metro", "taxi"]}[scene_type]
    services["calculator"].on("GET", "/api/v1/scenes/forum",
                              (200, {**SCENE, "type": scene_type, "form": form}))
    markup = Markup(page(client, "/s/forum/form"))
    assert heading in page(client, "/s/forum/form")
    sections = [f["data-activity"] for f in markup.find("fieldset")]
    assert sections[:len(opened)] == opened
    assert len([a for a in _details(markup) if "open" in a]) == len(opened)
    en = page(client, "/s/forum/form", lang="en")
    assert "Your visit to Green Forum" in en


def test_result_page_puts_the_pay_button_right_under_the_total(client):
    markup = Markup(page(client, "/e/est-1", lang="en"))
    order = [tag for tag, attrs in markup.elements
             if (tag == "p" and "total" in attrs.get("class", "").split())
             or (tag == "button" and attrs.get("type") == "submit")
             or (tag == "svg" and "chart" in attrs.get("class", ""))
             or (tag == "fieldset" and "projects" in attrs.get("class", ""))]
    assert order[:3] == ["p", "button", "fieldset"] and "svg" in order[3:]


def test_one_unit_on_a_view(client):
    html = page(client, "/e/est-1", lang="en")   # 533.9 kg: every figure in kg
    assert "533.9 kg" in html and "1,500,000 kg" in html and " t<" not in html and " t " not in html


def test_pay_page_of_a_completed_order_says_the_certificate_is_ready(client):
    from gateway.tests.pages_support import as_me

    as_me(client)
    done = Markup(page(client, "/pay/ord_done"))
    assert done.find("h1")[0]["data-ready-title"] == "你的证书已生成！"
    assert "<title>你的证书已生成！ · " in page(client, "/pay/ord_done")
    assert ">你的证书已生成！</h1>" in page(client, "/pay/ord_done")
    pending = page(client, "/pay/ord_1")
    assert ">支付</h1>" in pending and "data-ready-title" in pending
    # The ending's parts, hidden until app.js sees the certificate issued while the guest waits.
    assert 'class="moving muted" hidden' in pending
    assert 'class="celebration" aria-hidden="true" hidden' in pending
    assert "你已离线，联网后会自动重试。" in pending
