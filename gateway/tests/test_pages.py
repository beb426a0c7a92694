"""The pages (docs/contract.md §1), rendered by the real gateway against stand-in services on real
ports: status, content in Chinese and English, the language switch, escaping of what
guests typed, the rules the Content-Security-Policy imposes, and the operator pages."""
from __future__ import annotations

import copy
import re
import threading
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from diandian_common.auth import check_operator
from diandian_common.config import SERVICES
from diandian_common.errors import ApiError, register_error_handlers
from diandian_common.testing import free_port, migrated_sqlite_url
from gateway import participants
from gateway.app import create_app

OPERATOR_KEY = "pages-test-operator-key"
PUBLIC = "https://diandian.example"
ME = "p_me"
HOSTILE = "<script>alert('x')</script>"

SCENE = {
    "id": 1, "slug": "forum", "name": "绿色论坛 <i>2025</i>", "name_en": "Green Forum", "type": "conference",
    "location": "成都 Chengdu", "starts_on": "2025-09-07", "ends_on": None,
    "page_url": f"{PUBLIC}/s/forum", "qr_png_url": f"{PUBLIC}/api/v1/scenes/forum/qr.png",
    "poster_pdf_url": f"{PUBLIC}/api/v1/scenes/forum/poster.pdf",
    "form": ["flight", "rail", "hotel", "meal"], "archived": False,
}
CAR = {"key": "car.petrol", "value": 0.17474, "unit": "kg CO2e per vehicle-km",
       "source": "UK DESNZ GHG conversion factors 2025 — Medium car › Petrol › km"}
PER_CAPITA = {"key": "benchmark.per_capita", "value": 8400, "unit": "kg CO2 per person per year",
              "source": "Global Carbon Budget 2024 — China, 2023: 8.4 t"}


def factor(value, unit, source):
    return {"key": "x", "value": value, "unit": unit, "source": source, "year": 2025, "url": None}


ESTIMATE = {
    "id": "est-1", "kind": "trip", "scene": "forum", "participant_id": ME, "total_kg": 533.853,
    "items": [
        {"type": "flight", "category": "flights", "kg": 422.692,
         "factor": factor(0.12576, "kg CO2e per passenger-km", "UK DESNZ 2025 — Short-haul economy"),
         "calculation": "1556.066 km × 1.08 × 0.12576 × 2 legs = 422.692 kg CO2e"},
        {"type": "hotel", "category": "accommodation", "kg": 107.0,
         "factor": factor(53.5, "kg CO2e per room-night", "UK DESNZ 2025 — Hotel stay › China"),
         "calculation": "2 nights × 53.5 = 107 kg CO2e"},
        {"type": "taxi", "category": "transport", "kg": 4.161,
         "factor": factor(0.20805, "kg CO2e per vehicle-km", "UK DESNZ 2024 — Taxis"),
         "calculation": "20 km × 0.20805 = 4.161 kg CO2e"},
    ],
    "categories": {"home_energy": 0.0, "transport": 4.161, "flights": 422.692, "food": 0.0,
                   "accommodation": 107.0},
    "benchmark": None, "factor_set": "2025.1",
}
LIFE_ESTIMATE = {**ESTIMATE, "id": "est-life", "kind": "life", "scene": None, "total_kg": 4200.0,
                 "categories": {"home_energy": 2100.0, "transport": 900.0, "flights": 0.0, "food": 1200.0,
                                "accommodation": 0.0},
                 "benchmark": {"kg": 8400, "ratio": 0.5, "difference_kg": -4200,
                               "factor": {**PER_CAPITA, "note": None}}}
PROJECTS = [
    {"id": "prj_bus", "code": "CDCER-CD-EBUS", "name": "成都公交新能源车辆减排项目",
     "name_en": "Chengdu New-Energy Bus Fleet", "type": "clean_transport", "location": "Chengdu, Sichuan",
     "registry": "CDCER", "vintage": 2023,
     "price_fen_per_tonne": 4500, "issued_kg": 1_500_000, "reserved_kg": 0, "retired_kg": 0,
     "available_kg": 1_500_000},
    {"id": "prj_tiny", "code": "CDCER-TINY", "name": "小项目", "name_en": "Tiny Project",
     "type": "renewable_energy", "location": "Xinjin", "registry": "CDCER", "vintage": 2024,
     "price_fen_per_tonne": 5500,
     "issued_kg": 1000, "reserved_kg": 500, "retired_kg": 400, "available_kg": 100},
]
PROJECT_REF = {k: PROJECTS[0][k] for k in ("id", "code", "name", "name_en", "registry", "vintage")}
ORDER = {
    "id": "ord_1", "status": "pending_payment", "quantity_kg": 534, "amount_fen": 2403, "currency": "CNY",
    "project": PROJECT_REF, "participant": {"id": ME, "display_name": HOSTILE, "organization": None},
    "scene": {"slug": "forum", "name": SCENE["name"]},
    "payment": {"provider": "sandbox", "checkout_url": f"{PUBLIC}/pay/ord_1"},
    "retirement": None, "certificate": None,
}
COMPLETED_ORDER = {**ORDER, "id": "ord_done", "status": "completed",
                   "retirement": {"serial_range": "CDCER-CD-EBUS-2023:000000001-000000534", "serial_first": 1,
                                  "serial_last": 534, "retired_at": "2025-09-07T02:00:00+00:00"},
                   "certificate": {"id": "cert_1", "pdf_url": f"{PUBLIC}/api/v1/certificates/cert_1/pdf",
                                   "verify_url": f"{PUBLIC}/v/CODE.sig"}}
CERTIFICATE = {
    "id": "cert_1", "number": "DD-20250907-ABCD", "order_id": "ord_done", "holder": HOSTILE,
    "organization": "Diandian & Co", "quantity_kg": 534, "project": PROJECT_REF,
    "serial_range": "CDCER-CD-EBUS-2023:000000001-000000534",
    "scene": {"slug": "forum", "name": SCENE["name"]}, "ledger_hash": "a" * 64,
    "issued_at": "2025-09-07T02:00:00+00:00", "status": "valid", "revoked_at": None,
    "verify_url": f"{PUBLIC}/v/CODE.sig", "pdf_url": f"{PUBLIC}/api/v1/certificates/cert_1/pdf",
}
BOARD = {"items": [{"rank": 1, "participant_id": "p_top", "display_name": "王*", "kg": 900.0},
                   {"rank": 2, "participant_id": ME, "display_name": HOSTILE, "kg": 534.0},
                   {"rank": 3, "participant_id": "p_x", "display_name": "Li Lei", "kg": 12.5}], "total": 3456}
STANDING = {"rank": 2, "kg": 534.0, "total": 3456, "display_name": HOSTILE, "neighbours": []}


class FakeService:
    """A service on a real port answering canned JSON per ``(method, path)``; an answer may
    be a callable of the request. Requests are recorded."""

    def __init__(self, name: str):
        self.answers: dict[tuple[str, str], object] = {}
        self.requests: list[dict] = []
        app = Flask(name)
        register_error_handlers(app)

        @app.route("/api/v1/<path:_rest>", methods=["GET", "POST"])
        def answer(_rest):
            self.requests.append({"method": request.method, "path": request.path,
                                  "args": request.args.to_dict(), "json": request.get_json(silent=True)})
            found = self.answers.get((request.method, request.path))
            if found is None:
                raise ApiError(404, "not_found", f"{request.path} not found")
            status, body = found(request) if callable(found) else found
            return jsonify(copy.deepcopy(body)), status

        @app.get("/healthz")
        def healthz():
            return jsonify({"status": "ok"})

        self.server = make_server("127.0.0.1", free_port(), app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def on(self, method: str, path: str, answer) -> None:
        self.answers[(method, path)] = answer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def create_scene(req):
    operator = check_operator("scenes")  # the gateway's assertion, as a real service checks it
    body = req.get_json()
    if body["slug"] == "forum":
        return 409, {"error": {"code": "slug_taken", "message": "slug forum is taken"}}
    return 201, {**SCENE, **body, "created_by": operator.key_id}


def operator_orders(req):
    check_operator("projects")
    return 200, {"items": [COMPLETED_ORDER], "next_after": None}


def rankings(req):
    if req.args.get("board") == "organization":
        return 200, {"items": [{"rank": 1, "organization": "diandian", "display_name": "Diandian & Co",
                                "kg": 534.0}], "total": 1}
    return 200, BOARD


@pytest.fixture
def services(monkeypatch, tmp_path):
    fakes = {name: FakeService(name) for name in SERVICES}
    for name, fake in fakes.items():
        monkeypatch.setenv(f"{name.upper()}_URL", fake.url)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    for limit in ("RATE_LIMIT_ORDERS", "RATE_LIMIT_READS", "RATE_LIMIT_WRITES",
                  "RATE_LIMIT_PROVIDER_WEBHOOKS", "RATE_LIMIT_PER_ADDRESS"):
        monkeypatch.setenv(limit, "off")  # the gateway's own tests cover the limits
    monkeypatch.setenv("GATEWAY_DATABASE_URL", migrated_sqlite_url("gateway", tmp_path))
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC)
    calculator, orders, certificates, ranking = (fakes[s] for s in SERVICES)
    calculator.on("GET", "/api/v1/scenes", (200, {"items": [SCENE]}))
    calculator.on("GET", "/api/v1/scenes/forum", (200, SCENE))
    calculator.on("POST", "/api/v1/scenes", create_scene)
    calculator.on("GET", "/api/v1/scenes/forum/footprint", (200, {
        "scene": "forum", "participants": 42, "estimates": 50, "total_kg": 1068.0, "average_kg": 25.4,
        "categories": ESTIMATE["categories"]}))
    calculator.on("GET", "/api/v1/estimates/est-1", (200, ESTIMATE))
    calculator.on("GET", "/api/v1/estimates/est-life", (200, LIFE_ESTIMATE))
    calculator.on("GET", "/api/v1/factors", (200, {"version": "2025.1", "items": [CAR, PER_CAPITA]}))
    orders.on("GET", "/api/v1/projects", (200, {"items": PROJECTS}))
    orders.on("GET", "/api/v1/orders/ord_1", (200, ORDER))
    orders.on("GET", "/api/v1/orders/ord_done", (200, COMPLETED_ORDER))
    orders.on("GET", "/api/v1/orders", operator_orders)
    certificates.on("GET", "/api/v1/certificates/cert_1", (200, CERTIFICATE))
    certificates.on("GET", "/api/v1/certificates/verify/CODE.sig", lambda req: (200, {
        "valid": True, "revoked": False,
        "certificate": {**CERTIFICATE,
                        "holder": "<***" if req.args.get("mask_holder") == "true" else HOSTILE}}))
    certificates.on("GET", "/api/v1/certificates/verify/REVOKED.sig", (200, {
        "valid": False, "revoked": True,
        "certificate": {**CERTIFICATE, "status": "revoked", "revoked_at": "2025-09-08T00:00:00+00:00"}}))
    ranking.on("GET", "/api/v1/rankings", rankings)
    ranking.on("GET", f"/api/v1/rankings/participants/{ME}", (200, STANDING))
    yield fakes
    for fake in fakes.values():
        fake.stop()


@pytest.fixture
def app(services):
    app = create_app()
    app.extensions["keys"].ensure_operator(OPERATOR_KEY)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def as_me(client):
    client.set_cookie(participants.COOKIE_NAME, participants._serializer().dumps(ME))
    return client


def page(client, path, lang=None, status=200):
    headers = {"Accept-Language": lang} if lang else {}
    response = client.get(path, headers=headers)
    assert response.status_code == status, (path, response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


class Markup(HTMLParser):
    """Tags, attributes and text of a page, for the checks below."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.script_bodies: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.script_bodies.append(data)
        self.text.append(data)

    def find(self, tag, **attrs):
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def meta(self, prop):
        return next(a["content"] for t, a in self.elements if t == "meta" and a.get("property") == prop)


GUEST_PAGES = ["/", "/s/forum", "/s/forum/form", "/footprint", "/e/est-1", "/e/est-life", "/pay/ord_1",
               "/pay/ord_done", "/c/cert_1", "/rankings", "/rankings?scene=forum&board=organization",
               "/v/CODE.sig", "/v/REVOKED.sig"]


# --- language ---------------------------------------------------------------------------

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
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po
    from pathlib import Path

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


# --- what every page must respect ---------------------------------------------------------

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


# --- the guest flow -----------------------------------------------------------------------

def test_scene_page_leads_to_the_scene_form(client):
    markup = Markup(page(client, "/s/forum"))
    assert markup.find("a", href="/s/forum/form")
    assert markup.find("a", href="/rankings?scene=forum")


def test_scene_form_asks_the_scene_activities_and_carries_the_participant(client):
    response = client.get("/s/forum/form")
    participant_cookie = response.headers["Set-Cookie"]
    assert participant_cookie.startswith(participants.COOKIE_NAME)
    markup = Markup(response.get_data(as_text=True))
    form = markup.find("form")[0]
    assert form["data-kind"] == "trip" and form["data-scene"] == "forum"
    minted = participants._serializer().loads(participant_cookie.split(";")[0].split("=", 1)[1])
    assert form["data-participant"] == minted
    activities = [a["data-activity"] for a in markup.find("fieldset")]
    assert activities[:4] == SCENE["form"]
    assert set(activities) == {"flight", "rail", "metro", "bus", "taxi", "car", "hotel", "electricity",
                               "natural_gas", "meal"}
    fields = {a["data-field"] for a in markup.find("input") + markup.find("select") if "data-field" in a}
    assert {"from", "to", "distance_km", "cabin", "round_trip", "passengers", "class", "fuel", "nights",
            "rooms", "country", "kwh", "m3", "count", "diet"} <= fields
    assert as_me(client) and Markup(page(client, "/s/forum/form")).find("form")[0]["data-participant"] == ME


def test_unknown_scene_is_a_404_page_and_a_down_service_a_503_page(client, services):
    assert "页面不存在" in page(client, "/s/nowhere", status=404)
    services["calculator"].stop()
    assert "暂时无法使用" in page(client, "/s/forum", status=503)
    assert "The scenes are unavailable right now" in page(client, "/", lang="en", status=503)


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
    assert "6.4% of what a person in China emits" in html
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
    assert "演示支付" in pending and "Demo payment" in pending and "¥24.03" in pending
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
    assert "Demo payment" not in html and not markup.find("button")
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
    assert markup.meta("og:image") == f"{PUBLIC}/api/v1/certificates/cert_1/preview.png"
    assert markup.meta("og:url") == f"{PUBLIC}/c/cert_1"
    assert "Carbon Neutral Certificate of Honour" in markup.meta("og:title")
    assert markup.find("a", href="/api/v1/certificates/cert_1/pdf")
    share = markup.find("button", type="button")[0]
    assert share["data-url"] == f"{PUBLIC}/c/cert_1"
    assert "I am No. 2 of 3,456 at Green Forum" in share["data-text"]
    assert "I am No. 2 of 3,456 at Green Forum" in html
    assert markup.find("a", href=f"{PUBLIC}/v/CODE.sig")
    assert markup.find("a", href="/rankings?scene=forum")
    card = markup.find("a", download="diandian-rank.svg")[0]["href"]
    assert card.startswith(f"/api/v1/rankings/participants/{ME}/card.svg?")
    assert parse_qs(urlsplit(card).query) == {"lang": ["en"], "period": ["all"], "scene": ["forum"],
                                              "scene_name": ["Green Forum"]}
    zh = page(client, "/c/cert_1")
    assert "在绿色论坛 &lt;i&gt;2025&lt;/i&gt;，我是第 2 名，共 3,456 人" in zh


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


# --- operators ------------------------------------------------------------------------------

def login(client, key=OPERATOR_KEY, next_path="/operator/scenes"):
    return client.post("/operator/login", data={"api_key": key, "next": next_path})


def csrf_of(html: str) -> str:
    return Markup(html).find("input", name="csrf")[0]["value"]


def test_operator_pages_need_a_login(client):
    response = client.get("/operator/scenes/forum")
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/operator/login"
    assert parse_qs(urlsplit(response.headers["Location"]).query)["next"] == ["/operator/scenes/forum"]
    assert login(client, "not-a-key").status_code == 401
    assert client.get("/operator/projects").status_code == 303


def test_operator_login_keeps_the_key_in_a_strict_httponly_cookie(client):
    response = login(client, next_path="//evil.example/")
    assert response.status_code == 303 and response.headers["Location"] == "/operator/scenes"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("dd_operator=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/operator" in cookie
    assert client.get("/operator/scenes").status_code == 200
    logout = client.post("/operator/logout", data={"csrf": csrf_of(page(client, "/operator/scenes"))})
    assert logout.status_code == 303 and client.get("/operator/scenes").status_code == 303


def test_a_revoked_key_ends_the_session(app, client):
    info, key = app.extensions["keys"].create("door staff", {"scenes"})
    login(client, key)
    assert client.get("/operator/scenes").status_code == 200
    app.extensions["keys"].revoke(info.id)
    response = client.get("/operator/scenes")
    assert response.status_code == 303 and response.headers["Location"] == "/operator/login?expired=1"
    assert "登录已过期" in page(client, "/operator/login?expired=1")


def test_operator_scenes_offer_qr_and_poster_downloads(client):
    login(client)
    markup = Markup(page(client, "/operator/scenes", lang="en"))
    assert markup.find("a", href="/api/v1/scenes/forum/qr.png", download="forum-qr.png")
    assert markup.find("a", href="/api/v1/scenes/forum/poster.pdf", download="forum-poster.pdf")
    assert markup.find("a", href="/operator/scenes/forum")
    slug = markup.find("input", name="slug")[0]
    assert slug["pattern"] == "[a-z0-9]+(-[a-z0-9]+)*" and slug["maxlength"] == "64" and "required" in slug


def test_operator_creates_a_scene_through_the_gateway(client, services):
    login(client)
    csrf = csrf_of(page(client, "/operator/scenes"))
    refused = client.post("/operator/scenes", data={"slug": "expo", "name": "博览会", "type": "conference"})
    assert refused.status_code == 403
    created = client.post("/operator/scenes", data={
        "csrf": csrf, "slug": "expo", "name": "博览会", "name_en": "Expo", "type": "conference",
        "location": "", "starts_on": "2025-10-01", "ends_on": ""})
    assert created.status_code == 303
    assert created.headers["Location"] == "/operator/scenes?created=expo#scene-expo"
    posted = [r for r in services["calculator"].requests if r["method"] == "POST"]
    assert posted[-1]["json"] == {"slug": "expo", "name": "博览会", "name_en": "Expo", "type": "conference",
                                  "starts_on": "2025-10-01"}  # empty optional fields left out
    taken = client.post("/operator/scenes",
                        data={"csrf": csrf, "slug": "forum", "name": "x", "type": "hotel"})
    assert taken.status_code == 409 and "该标识已被其他场景使用" in taken.get_data(as_text=True)
    assert 'value="x"' in taken.get_data(as_text=True)  # the form keeps what was typed


def test_a_key_without_the_scope_cannot_create_scenes(app, client, services):
    _, projects_only = app.extensions["keys"].create("finance", {"projects"})
    login(client, projects_only)
    csrf = csrf_of(page(client, "/operator/scenes"))
    response = client.post("/operator/scenes",
                           data={"csrf": csrf, "slug": "expo", "name": "x", "type": "hotel"})
    assert response.status_code == 403
    assert not [r for r in services["calculator"].requests if r["method"] == "POST"]


def test_operator_dashboard_shows_estimated_and_neutralised(client):
    login(client)
    html = page(client, "/operator/scenes/forum", lang="en")
    markup = Markup(html)
    stats = dict(zip([t.strip() for t in re.findall(r"<dt>([^<]+)</dt>", html)],
                     re.findall(r"<dd>([^<]+)</dd>", html)))
    assert stats["Participants who estimated"] == "42"
    assert stats["Participants who neutralised"] == "3,456"
    assert stats["Estimated"] == "1.07 t" and stats["Neutralised"] == "534 kg"
    assert stats["Share neutralised"] == "50%"
    assert markup.find("polyline") and markup.find("line", **{"class": "target"})
    panel = markup.find("div", id="live-panel")[0]
    assert panel["data-url"] == "/operator/scenes/forum/panel"
    assert "Participants who estimated" in page(client, panel["data-url"], lang="en")
    assert page(client, "/operator/scenes/nowhere", status=404)


def test_operator_projects_show_inventory(client):
    login(client)
    html = page(client, "/operator/projects", lang="en")
    assert "1,500 t" in html and Markup(html).find("meter", value="900")
    assert Markup(html).find("a", href="/api/v1/ledger?project=prj_bus")
