"""What the page tests share: stand-in services answering as the real ones do, their data, and
reading the pages back (fixtures in gateway/tests/conftest.py)."""
from __future__ import annotations

import copy
import threading
from html.parser import HTMLParser

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from diandian_common.auth import check_operator
from diandian_common.errors import ApiError, register_error_handlers
from diandian_common.testing import free_port
from gateway import participants

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


RF_NOTE = {"en": "Radiative forcing: at altitude a plane warms the climate more than its CO2 alone.",
           "zh": "辐射强迫：飞机在高空对气候的增温作用大于其二氧化碳本身。"}


ESTIMATE = {
    "id": "est-1", "kind": "trip", "scene": "forum", "participant_id": ME, "total_kg": 533.853,
    "total_kg_without_rf": 361.267,
    "items": [
        {"type": "flight", "category": "flights", "kg": 422.692, "kg_without_rf": 250.106, "party_size": 1,
         "factor": {**factor(0.12576, "kg CO2e per passenger-km", "UK DESNZ 2025 — Short-haul economy"),
                    "gases": "CO2e", "radiative_forcing": True},
         "calculation": "1556.066 km × 1.08 × 0.12576 × 2 legs = 422.692 kg CO2e"},
        {"type": "hotel", "category": "accommodation", "kg": 107.0, "party_size": 1,
         "factor": {**factor(53.5, "kg CO2e per room-night", "UK DESNZ 2025 — Hotel stay › China"),
                    "gases": "CO2e"},
         "calculation": "2 nights × 53.5 = 107 kg CO2e"},
        {"type": "taxi", "category": "transport", "kg": 4.161, "party_size": 3, "share": 0.333333,
         "factor": {**factor(0.20805, "kg CO2e per vehicle-km", "UK DESNZ 2025 — Taxis"), "gases": "CO2e"},
         "note": "No Chinese source publishes a taxi factor: the UK's is a proxy.",
         "calculation": "60 km × 0.20805 ÷ 3 travelling together = 4.161 kg CO2e each"},
    ],
    "categories": {"home_energy": 0.0, "transport": 4.161, "flights": 422.692, "food": 0.0,
                   "accommodation": 107.0},
    "notes": {"radiative_forcing": RF_NOTE},
    "benchmark": None, "factor_set": "2025.2",
}


# As an estimate of factor set 2025.1 reads: its flight's radiative forcing not disclosed.
OLD_ESTIMATE = {k: v for k, v in ESTIMATE.items() if k not in ("total_kg_without_rf", "notes")} | {
    "id": "est-old", "factor_set": "2025.1",
    "items": [{k: v for k, v in ESTIMATE["items"][0].items() if k not in ("kg_without_rf", "party_size")}
              | {"factor": factor(0.12576, "kg CO2e per passenger-km", "UK DESNZ 2025 — Short-haul")}]}


def life_line(activity, category, kg, gases, **details):
    return {"type": activity, "category": category, "kg": kg, "party_size": 1, "calculation": f"{kg} kg",
            "factor": {**factor(1, "kg per unit", f"{activity} source"), "gases": gases}} | details


LIFE_ESTIMATE = {**ESTIMATE, "id": "est-life", "kind": "life", "scene": None, "total_kg": 4200.0,
                 "total_kg_without_rf": 3953.0,
                 "items": [
                     life_line("electricity", "home_energy", 1500.0, "CO2", province="CN-SC", party_size=3,
                               share=0.333333),
                     life_line("natural_gas", "home_energy", 600.0, "CO2"),
                     life_line("car", "transport", 900.0, "CO2e"),
                     {**ESTIMATE["items"][0], "kg": 600.0, "kg_without_rf": 353.0},
                     life_line("meal", "food", 600.0, "CO2e")],
                 "categories": {"home_energy": 2100.0, "transport": 900.0, "flights": 600.0, "food": 600.0,
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
                                  "args": request.args.to_dict(), "json": request.get_json(silent=True),
                                  "accept_language": request.headers.get("Accept-Language")})
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


def login(client, key=OPERATOR_KEY, next_path="/operator/scenes"):
    return client.post("/operator/login", data={"api_key": key, "next": next_path})


def csrf_of(html: str) -> str:
    return Markup(html).find("input", name="csrf")[0]["value"]
