"""The organiser's projector screen (issue 21) and the coverage the dashboard states, rendered by
the real gateway against stand-in services (gateway/tests/pages_support.py); and the operator
pages' Chinese labels."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.tests.pages_support import HOSTILE, SCENE, Markup, login, page

PROJECTOR = "/operator/scenes/forum/projector"


def counters(html: str) -> dict[str, str]:
    """Each counter's label and its big figure, as the screen shows them."""
    labels = re.findall(r'<p class="counter-label">([^<]+)</p>', html)
    values = [re.sub(r"<[^>]+>", "", v) for v in re.findall(r'<p class="counter-value">(.*?)</p>', html)]
    return dict(zip(labels, values))


def footprint(services, total_kg: float, participants: int) -> None:
    services["calculator"].on("GET", "/api/v1/scenes/forum/footprint", (200, {
        "scene": "forum", "participants": participants, "estimates": participants, "total_kg": total_kg,
        "average_kg": 0.0, "categories": {}}))


@pytest.mark.parametrize("path", [PROJECTOR, PROJECTOR + "/panel"])
def test_the_projector_screen_needs_the_operator_session(client, path):
    response = client.get(path)
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/operator/login"
    assert parse_qs(urlsplit(response.headers["Location"]).query)["next"] == [path]


def test_the_projector_screen_shows_counters_board_and_qr(client):
    login(client)
    html = page(client, PROJECTOR, lang="en")
    markup = Markup(html)
    assert counters(html) == {"Guests who neutralised": "3,456", "Neutralised": "534 kg",
                              "Of the estimated footprint": "50%"}
    assert "Estimated footprint: 1,068 kg" in html      # in the counter's unit
    assert "50% of the estimated footprint is neutralised." in html
    assert markup.find("img", src="/api/v1/scenes/forum/qr.png")[0]["alt"]
    assert SCENE["page_url"] in markup.text
    board = re.findall(r'<span class="name">([^<]*)</span> <span class="kg">([^<]*)</span>', html)
    assert board == [("王*", "900 kg"), ("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;", "534 kg"),
                     ("Li Lei", "12.5 kg")]   # as the public board shows them, escaped
    assert HOSTILE not in html
    live = markup.find("div", **{"class": "projector-live js-refresh"})[0]
    assert live["data-url"] == PROJECTOR + "/panel"
    assert counters(page(client, live["data-url"], lang="en"))["Of the estimated footprint"] == "50%"
    assert markup.find("button", **{"class": "js-fullscreen"})
    assert markup.find("a", href="/operator/scenes/forum")           # back to the dashboard
    assert markup.find("a", href=PROJECTOR + "?theme=light")
    assert 'class="projector theme-dark"' in html


def test_the_projector_screen_needs_no_inline_code(client):
    login(client)
    for lang in ("zh-CN", "en"):
        markup = Markup(page(client, PROJECTOR, lang=lang))
        assert markup.script_bodies == [] and not markup.find("style")
        assert all("style" not in attrs for _, attrs in markup.elements)
        assert all(not k.startswith("on") for _, attrs in markup.elements for k in attrs)
        assert all(a.get("src", "").startswith("/static/") for a in markup.find("script"))


def test_the_projector_screen_in_chinese(client):
    login(client)
    html = page(client, PROJECTOR, lang="zh-CN")
    assert counters(html) == {"完成中和的嘉宾": "3,456", "已中和": "534 kg", "占估算碳足迹": "50%"}
    assert "扫码参与" in html and "已中和估算碳足迹的 50%。" in html and "排行榜前列" in html
    assert '<html lang="zh-CN">' in html


@pytest.mark.parametrize("theme, shown", [("light", "light"), ("dark", "dark"), ("<b>x</b>", "dark"),
                                          ("", "dark")])
def test_a_stray_theme_falls_back_to_the_dark_screen(client, theme, shown):
    login(client)
    html = page(client, PROJECTOR, lang="en") if not theme else \
        client.get(PROJECTOR, query_string={"theme": theme}).get_data(as_text=True)
    assert f'class="projector theme-{shown}"' in html and "<b>x</b>" not in html


@pytest.mark.parametrize("slug", ["nowhere", "%3Cscript%3E", "a" * 300, "%2E%2E", "%E4%B8%AD%E6%96%87",
                                  "forum%20x", "%00"])
def test_hostile_slugs_get_the_not_found_page(client, slug):
    login(client)
    for path in (f"/operator/scenes/{slug}/projector", f"/operator/scenes/{slug}/projector/panel"):
        response = client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert response.mimetype == "text/html"


def test_a_calculator_that_does_not_answer_is_unavailable_not_missing(client, services):
    login(client)
    down = (503, {"error": {"code": "service_unavailable", "message": "down"}})
    services["calculator"].on("GET", "/api/v1/scenes/forum", down)
    assert client.get(PROJECTOR).status_code == 503
    assert client.get("/operator/scenes/forum").status_code == 503


def test_more_than_the_estimate_is_never_a_bare_percentage(client, services):
    footprint(services, 276.7, 5)                       # 534 kg neutralised: 193 %
    login(client)
    html = page(client, PROJECTOR, lang="zh-CN")
    assert counters(html)["占估算碳足迹"] == "&gt; 100%"
    assert "抵消量超过估算的碳足迹（193%）" in html
    assert Markup(html).find("rect", **{"class": "fill", "width": "100"})   # the bar stops at 100
    dashboard = page(client, "/operator/scenes/forum", lang="en")
    stats = dict(zip(re.findall(r"<dt>([^<]+)</dt>", dashboard), re.findall(r"<dd>([^<]+)</dd>", dashboard)))
    assert stats["Share neutralised"] == "&gt; 100%"
    assert "More than the estimated footprint was offset (193%)" in dashboard
    assert ">193%<" not in dashboard and ">193%<" not in html


def test_neutralised_without_an_estimate_is_explained(client, services):
    footprint(services, 0.0, 0)
    login(client)
    html = page(client, PROJECTOR, lang="en")
    assert counters(html)["Of the estimated footprint"] == "—"
    assert "Guests neutralised without estimating a footprint for this event" in html
    assert "Estimated a footprint here: 0" in html
    dashboard = page(client, "/operator/scenes/forum/panel", lang="zh-CN")
    assert "有嘉宾未在本活动估算碳足迹就完成了中和" in dashboard


def test_tonnes_once_a_tonne_is_neutralised(client, services):
    many = [{"id": f"ord_{n}", "quantity_kg": 600, "retirement": {"retired_at": "2025-09-07T02:00:00+00:00"},
             "status": "completed", "scene": {"slug": "forum"}} for n in range(3)]
    services["orders"].on("GET", "/api/v1/orders", (200, {"items": many, "next_after": None}))
    login(client)
    html = page(client, PROJECTOR, lang="en")
    assert counters(html)["Neutralised"] == "1.8 t" and "Estimated footprint: 1.07 t" in html


def test_the_dashboard_opens_the_projector_screen(client):
    login(client)
    markup = Markup(page(client, "/operator/scenes/forum", lang="zh-CN"))
    assert [a for a in markup.find("a", href=PROJECTOR)]
    assert "投影屏幕" in page(client, "/operator/scenes/forum", lang="zh-CN")


def test_operator_projects_label_issued_credits_as_a_quantity(client):
    login(client)
    html = page(client, "/operator/projects", lang="zh-CN")
    assert "已签发量" in html and "签发时间" not in html
    assert "已注销量" in html and "已预留量" in html and "可用量" in html
    assert "<title>项目 · 运营后台</title>" in html
