"""The pages (docs/contract.md §1), rendered by the real gateway against stand-in services on real
ports: status, content in Chinese and English, the language switch, escaping of what
guests typed, the rules the Content-Security-Policy imposes, and the operator pages."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.tests.pages_support import (
    BOARD,
    CAR,
    CERTIFICATE,
    GUEST_PAGES,
    HOSTILE,
    ME,
    ORDER,
    PER_CAPITA,
    PUBLIC,
    SCENE,
    Markup,
    as_me,
    page,
)


def test_chinese_by_default_and_english_by_accept_language(client):
    zh = page(client, "/s/forum")
    assert '<html lang="zh-CN">' in zh and "我要碳中和" in zh and "I want to be carbon neutral" not in zh
    en = page(client, "/s/forum", lang="en-US,en;q=0.8")
    assert '<html lang="en">' in en and "I want to be carbon neutral" in en and "我要碳中和" not in en
    assert "Green Forum" in en  # the scene's English name in English
    assert "zh-CN" in page(client, "/", lang="fr-FR,fr;q=0.9")  # no French: Chinese


def test_language_switch_is_remembered_and_only_redirects_on_this_site(client):
    zh = Markup(page(client, "/s/forum"))
    switch = next(a for a in zh.find("a") if "lang-switch" in a.get("class", ""))
    assert switch["href"] == "/lang/en?next=/s/forum" and switch["lang"] == "en"
    response = client.get(switch["href"])
    assert response.status_code == 303 and response.headers["Location"] == "/s/forum"
    assert "dd_lang=en" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    # The cookie beats the browser's language.
    assert "I want to be carbon neutral" in page(client, "/s/forum", lang="zh-CN")
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        assert client.get("/lang/zh", query_string={"next": target}).headers["Location"] == "/"
    client.get("/lang/zh?next=/")
    assert "我要碳中和" in page(client, "/s/forum", lang="en")


def test_every_text_has_a_chinese_translation():
    from pathlib import Path

    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent.parent
    with open(root / "translations/zh/LC_MESSAGES/messages.po", "rb") as po:
        catalog = read_po(po)
    method_map = [("pages*.py", "python"), ("templates/**.html", "jinja2")]
    extracted = {message for _, _, message, _, _ in extract_from_dir(
        root, method_map, keywords={"_": None, "_l": None, "gettext": None}) if isinstance(message, str)}
    assert extracted, "no texts extracted"
    untranslated = [m for m in extracted if not (catalog.get(m) and catalog.get(m).string)
                    or catalog.get(m).fuzzy]
    assert untranslated == []
    placeholders = re.compile(r"%\(\w+\)s")
    for message in extracted:
        translated = catalog.get(message).string
        assert sorted(placeholders.findall(message)) == sorted(placeholders.findall(translated)), message


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_pages_need_no_inline_code_and_label_every_control(client, lang):
    as_me(client)
    for path in GUEST_PAGES:
        status = 404 if path.startswith("/v/NOPE") else 200
        markup = Markup(page(client, path, lang=lang, status=status))
        assert markup.script_bodies == [], path                       # CSP: script-src 'self'
        assert not markup.find("style"), path                         # CSP: style-src 'self'
        assert all("style" not in attrs for _, attrs in markup.elements), path
        assert all(not k.startswith("on") for _, attrs in markup.elements for k in attrs), path
        assert all(a.get("src", "").startswith("/static/") for a in markup.find("script")), path
        labelled = {a["for"] for a in markup.find("label")}
        for tag, attrs in markup.elements:
            if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit"):
                assert attrs.get("id") in labelled, (path, tag, attrs)


def test_static_files_are_served_by_the_gateway(client):
    markup = Markup(page(client, "/"))
    script = markup.find("script")[0]["src"]
    stylesheet = next(a["href"] for a in markup.find("link") if a.get("rel") == "stylesheet")
    assert re.fullmatch(r"/static/app\.js\?v=[0-9a-f]{10}", script)
    assert client.get(script).status_code == 200 and client.get(stylesheet).status_code == 200
    assert "fetch(" in client.get(script).get_data(as_text=True)


def test_what_guests_typed_is_escaped_everywhere(client):
    as_me(client)
    for path in ("/c/cert_1", "/rankings", "/v/CODE.sig", "/pay/ord_1", "/"):
        html = page(client, path)
        assert HOSTILE not in html and "<i>2025</i>" not in html, path
    assert "&lt;script&gt;alert(" in page(client, "/c/cert_1")
    assert "绿色论坛 &lt;i&gt;2025&lt;/i&gt;" in page(client, "/s/forum")


def test_scene_page_leads_to_the_scene_form(client):
    markup = Markup(page(client, "/s/forum"))
    assert markup.find("a", href="/s/forum/form")
    assert markup.find("a", href="/rankings?scene=forum")


def test_scene_form_asks_the_scene_activities_and_names_no_participant(client):
    markup = Markup(page(client, "/s/forum/form"))
    form = markup.find("form")[0]
    assert form["data-kind"] == "trip" and form["data-scene"] == "forum"
    # The page never says who the guest is: the gateway knows them by their cookie.
    assert "data-participant" not in form
    activities = [a["data-activity"] for a in markup.find("fieldset")]
    # The scene's activities, those a conference guest most likely fills in first (and open).
    assert activities[:4] == ["flight", "hotel", "rail", "meal"]
    assert sorted(activities[:4]) == sorted(SCENE["form"])
    assert set(activities) == {"flight", "rail", "metro", "bus", "taxi", "car", "hotel", "electricity",
                               "natural_gas", "meal"}
    fields = {a["data-field"] for a in markup.find("input") + markup.find("select") if "data-field" in a}
    assert {"from", "to", "distance_km", "cabin", "round_trip", "party_size", "class", "fuel", "nights",
            "rooms", "country", "kwh", "province", "m3", "count", "diet"} <= fields
    assert "passengers" not in fields  # every estimate is one guest's: sharing is party_size


def test_unknown_scene_is_a_404_page_and_a_down_service_a_503_page(client, services):
    assert "页面不存在" in page(client, "/s/nowhere", status=404)
    services["calculator"].stop()
    assert "暂时无法使用" in page(client, "/s/forum", status=503)
    assert "The scenes are unavailable right now" in page(client, "/", lang="en", status=503)


def test_a_mistyped_address_is_a_page_in_the_browsers_language_and_json_for_the_api(client):
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
                         "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"}  # Chromium's
    response = client.get("/no-such-page", headers=browser)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "页面不存在" in response.get_data(as_text=True)
    english = client.get("/no-such-page", headers={**browser, "Accept-Language": "en"})
    assert "Page not found" in english.get_data(as_text=True)
    for path, headers in (("/no-such-page", {}), ("/api/v1/no-such-thing", browser)):
        response = client.get(path, headers=headers)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_result_shows_chart_equivalents_lines_and_priced_projects(client):
    html = page(client, "/e/est-1", lang="en")
    markup = Markup(html)
    assert "533.9 kg" in html
    # One bar per category with emissions, the longest for flights.
    bars = [a["class"] for a in markup.find("g") if a.get("class", "").startswith("bar ")]
    assert bars == ["bar bar-flights", "bar bar-accommodation", "bar bar-transport"]
    widths = [float(a["width"]) for a in markup.find("rect")[:3]]
    assert widths[0] == 220 and widths[1] == pytest.approx(220 * 107 / 422.692, abs=0.1)
    # Everyday equivalents from the calculator's own cited factors.
    assert f"driving a petrol car for {533.853 / 0.17474:,.0f} km" in html and CAR["source"] in html
    # The per-capita benchmark of these factors counts CO₂ only: a CO₂e footprint is not set
    # against it (test_pages_disclosure shows a like-for-like one).
    assert "of what a person in China emits" not in html
    # Every line with its factor and source.
    assert "1556.066 km × 1.08" in html and "UK DESNZ 2025 — Hotel stay › China" in html
    # Projects: price for this footprint = ceil(534 kg × price / 1000) fen.
    form = markup.find("form")[0]
    assert form["data-estimate"] == "est-1" and form["data-scene"] == "forum"
    radios = markup.find("input", type="radio")
    assert [r["value"] for r in radios] == ["prj_bus", "prj_tiny"]
    assert "checked" in radios[0] and "disabled" in radios[1]   # only 100 kg left in the tiny one
    assert "¥24.03 for your footprint" in html                   # 534 × 4500 / 1000 = 2403 fen
    assert "Not enough credits left" in html and "Chengdu New-Energy Bus Fleet" in html
    assert markup.find("input", id="display-name")[0]["maxlength"] == "100"


def test_life_result_compares_with_the_per_capita_benchmark(client):
    html = page(client, "/e/est-life")
    assert "4.2 t" in html and "与平均水平相比" in html and "中国人均年排放量的 50%" in html
    assert PER_CAPITA["source"] in html
    assert Markup(html).find("form")[0]["data-scene"] == ""


def test_life_footprint_form_asks_monthly_bills_and_weekly_distances(client):
    markup = Markup(page(client, "/footprint", lang="en"))
    assert markup.find("form")[0]["data-kind"] == "life"
    periods = {(f["data-activity"]) for f in markup.find("fieldset")}
    assert periods == {"electricity", "natural_gas", "car", "metro", "bus", "flight", "meal"}
    hidden = [(a["data-field"], a["value"]) for a in markup.find("input", type="hidden")]
    assert ("period", "month") in hidden and ("period", "week") in hidden and ("round_trip", "true") in hidden
    assert "data-repeat" in markup.find("input", **{"data-field": "trips"})[0]


def test_pay_page_is_a_clearly_labelled_demo_with_progress(client):
    pending = page(client, "/pay/ord_1")
    markup = Markup(pending)
    assert "测试支付" in pending and "Sandbox — no money moves" in pending and "¥24.03" in pending
    assert "Green Forum" in page(client, "/pay/ord_1", lang="en")  # the scene's English name
    assert markup.find("button", type="button")[0]["class"] == "button primary big js-pay-button"
    progress = next(a for a in markup.find("section") if "progress" in a.get("class", ""))
    assert "hidden" in progress
    done = Markup(page(client, "/pay/ord_done", lang="en"))
    assert [a["class"] for a in done.find("li") if "data-step" in a] == ["done", "done", "done"]
    assert done.find("a", href="/c/cert_1")
    assert client.get("/pay/ord_1").headers["Cache-Control"] == "no-store"


def test_pay_page_of_another_provider_waits_for_its_confirmation(client, services):
    services["orders"].on("GET", "/api/v1/orders/ord_tp", (200, {
        **ORDER, "id": "ord_tp", "payment": {"provider": "testpay", "checkout_url": f"{PUBLIC}/pay/ord_tp"}}))
    html = page(client, "/pay/ord_tp", lang="en")
    markup = Markup(html)
    # No button to pay: only the ending's "stay on this page", hidden until the certificate is ready.
    assert "Sandbox" not in html
    assert [b["class"] for b in markup.find("button")] == ["button secondary js-stay"]
    assert "Waiting for the payment provider" in html
    assert markup.find("div", **{"data-provider": "testpay", "data-status": "pending_payment"})
    progress = next(a for a in markup.find("section") if "progress" in a.get("class", ""))
    assert "hidden" not in progress
    failed = {**ORDER, "id": "ord_tp", "status": "failed"}
    services["orders"].on("GET", "/api/v1/orders/ord_tp", (200, failed))
    assert "the payment has been refunded" in page(client, "/pay/ord_tp", lang="en")


def test_certificate_page_shares_well_and_verifies(client):
    html = page(client, "/c/cert_1", lang="en")
    markup = Markup(html)
    # The share card (gateway/share_card.py) is the page's main image and its og:image.
    assert markup.meta("og:image") == f"{PUBLIC}/api/v1/certificates/cert_1/card.png"
    assert (markup.meta("og:image:width"), markup.meta("og:image:height")) == ("1080", "1920")
    assert markup.meta("og:type") == "website" and markup.meta("og:description")
    image = next(a for a in markup.find("img") if a.get("class") == "share-card-image")
    assert image["src"] == "/api/v1/certificates/cert_1/card.png"
    assert "Long-press the image to save or send it" in html
    assert markup.meta("og:url") == f"{PUBLIC}/c/cert_1"
    assert "Carbon Neutral Certificate of Honour" in markup.meta("og:title")
    assert markup.find("a", href="/api/v1/certificates/cert_1/pdf")
    share = next(b for b in markup.find("button", type="button") if "js-share-card" in b.get("class", ""))
    assert share["data-url"] == f"{PUBLIC}/c/cert_1"
    assert "I am No. 2 of 3,456 at Green Forum" in share["data-text"]
    assert "I am No. 2 of 3,456 at Green Forum" in html
    assert markup.find("a", href=f"{PUBLIC}/v/CODE.sig")
    assert markup.find("a", href="/rankings?scene=forum")
    card = markup.find("a", download="diandian-rank.svg")[0]["href"]
    assert card.startswith(f"/api/v1/rankings/participants/{ME}/card.svg?")
    assert parse_qs(urlsplit(card).query) == {"lang": ["en"], "period": ["all"], "scene": ["forum"],
                                              "scene_name": ["Green Forum"]}
    assert share["data-card"] == "/api/v1/certificates/cert_1/card.png"
    zh = page(client, "/c/cert_1")
    assert "在绿色论坛 &lt;i&gt;2025&lt;/i&gt;，我是第 2 名，共 3,456 人" in zh
    assert "长按图片保存或发送给朋友" in zh


def test_a_revoked_certificate_page_offers_no_share_card(client, services):
    services["certificates"].on("GET", "/api/v1/certificates/cert_1", (200, {
        **CERTIFICATE, "status": "revoked", "revoked_at": "2025-09-08T00:00:00+00:00"}))
    markup = Markup(page(client, "/c/cert_1", lang="en"))
    assert not [a for t, a in markup.elements if t == "meta" and a.get("property") == "og:image"]
    assert not [a for a in markup.find("img") if a.get("class") == "share-card-image"]
    share = next(b for b in markup.find("button", type="button") if "js-share-card" in b.get("class", ""))
    assert "data-card" not in share and share["data-url"] == f"{PUBLIC}/c/cert_1"


def test_certificate_qr_code_decodes_to_the_verify_url(client):
    import zxingcpp
    from PIL import Image, ImageDraw

    markup = Markup(page(client, "/c/cert_1"))
    svg = next(a for a in markup.find("svg") if a.get("class") == "qr")
    size = int(svg["viewbox"].split()[2])
    path = next(a["d"] for a in markup.find("path"))
    scale = 8
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y, width in re.findall(r"M(\d+) (\d+)h(\d+)", path):
        x, y, width = int(x), int(y), int(width)
        draw.rectangle([x * scale, y * scale, (x + width) * scale - 1, (y + 1) * scale - 1], fill=0)
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [CERTIFICATE["verify_url"]]


def test_leaderboard_highlights_me(client, services):
    as_me(client)
    markup = Markup(page(client, "/rankings?scene=forum&period=week", lang="en"))
    rows = markup.find("li", **{"aria-current": "true"})
    assert len(rows) == 1 and rows[0]["class"] == "me"
    asked = [r["args"] for r in services["ranking"].requests]
    assert {"board": "individual", "scene": "forum", "period": "week", "limit": "50"} in asked
    assert any(r["path"] == f"/api/v1/rankings/participants/{ME}" and r["args"]["period"] == "week"
               for r in services["ranking"].requests)
    html = page(client, "/rankings?scene=forum", lang="en")
    assert "I am No. 2 of 3,456 at Green Forum" in html and "3,456 on this board" in html


def test_my_rank_with_neighbours_when_i_am_not_on_the_first_page(client, services):
    services["ranking"].on("GET", f"/api/v1/rankings/participants/{ME}", (200, {
        "rank": 80, "kg": 2.0, "total": 3456, "display_name": "Me",
        "neighbours": [{"rank": 79, "participant_id": "p_a", "display_name": "Above", "kg": 2.5},
                       {"rank": 81, "participant_id": "p_b", "display_name": "Below", "kg": 1.5}]}))
    services["ranking"].on("GET", "/api/v1/rankings", (200, {"items": BOARD["items"][:1], "total": 3456}))
    html = page(as_me(client), "/rankings", lang="en")
    around = html[html.index("Around me"):]
    assert around.index("Above") < around.index("Me") < around.index("Below")
    assert 'class="me" aria-current="true"' in around


def test_organisation_board_and_a_visitor_without_a_cookie(client):
    html = page(client, "/rankings?board=organization&period=bogus", lang="en")
    assert "Diandian &amp; Co" in html and "aria-current=\"true\"" not in html
    assert 'value="all" selected' in html  # an unknown period falls back to all time


def test_verification_page_valid_masked_revoked_and_unknown(client, services):
    valid = page(client, "/v/CODE.sig", lang="en")
    assert "Valid" in valid and "a" * 64 in valid and "CDCER-CD-EBUS-2023:000000001-000000534" in valid
    assert Markup(valid).find("a", href="/v/CODE.sig?mask=1")
    masked = page(client, "/v/CODE.sig?mask=1", lang="en")
    assert "&lt;***" in masked and "alert" not in masked
    assert services["certificates"].requests[-1]["args"] == {"mask_holder": "true"}
    revoked = page(client, "/v/REVOKED.sig")
    assert "已撤销" in revoked
    assert "未找到" in page(client, "/v/NOPE", status=404)
