"""The event report (GET /api/v1/scenes/<slug>/report), composed by the real gateway from stand-in
services (gateway/tests/pages_support.py): scope, formats, totals, coverage and the claim."""
from __future__ import annotations

import csv
import io
import re

import pytest
from pypdf import PdfReader

from diandian_common.auth import check_operator
from gateway import event_report
from gateway.tests.pages_support import COMPLETED_ORDER, OPERATOR_KEY, PROJECT_REF, SCENE

REPORT = "/api/v1/scenes/forum/report"
ADMIN = {"X-API-Key": OPERATOR_KEY}
FOOTPRINT = {"scene": "forum", "participants": 3, "estimates": 4, "total_kg": 1000.5, "average_kg": 333.5,
             "categories": {"flights": 800.25, "transport": 100.0, "accommodation": 80.25, "food": 20.0},
             "total_kg_without_rf": 658.5,
             "categories_without_rf": {"flights": 458.25, "transport": 100.0, "accommodation": 80.25,
                                       "food": 20.0}}
ELECTRICITY = {"type": "electricity", "category": "venue_energy", "kg": 530.6, "kwh": 1000.0,
               "calculation": "1000 kWh × 0.5306 kg CO2e per kWh = 530.6 kg CO2e",
               "factor": {"key": "electricity", "value": 0.5306, "unit": "kg CO2e per kWh",
                          "source": "MEE 2023 — national grid", "year": 2023}, "parameters": []}
INPUTS = {"scene": "forum", "province": None, "attendees": 250, "venue_kwh": 1000.0,
          "catering": {"meat_meals": None, "vegetarian_meals": None},
          "waste_kg": None, "waste_treatment": None,
          "updated_at": "2025-09-08T00:00:00+00:00", "factor_set": "2025.1", "lines": [ELECTRICITY],
          "categories": {"venue_energy": 530.6, "catering": 0.0, "waste": 0.0}, "total_kg": 530.6,
          "unpriced": []}
FACTORS = {"version": "2025.1", "title": "Diandian factors 2025.1", "description": "DESNZ 2025, MEE 2023",
           "current": True, "versions": ["2025.1"], "items": []}


def order(number: int, quantity: int, *, anchored: int = 0, status: str = "completed") -> dict:
    registry = None if not anchored else {
        "anchored_kg": anchored, "complete": anchored == quantity,
        "records": [{"cancellation_id": f"CDCER-CAN-{number}", "url": "https://registry.example/c",
                     "retired_on": "2025-09-10", "anchored_kg": anchored}]}
    return {**COMPLETED_ORDER, "id": f"ord_{number}", "status": status, "quantity_kg": quantity,
            "project": PROJECT_REF,
            "retirement": {"serial_range": f"CDCER-CD-EBUS-2023:{number:09d}-{number + quantity - 1:09d}",
                           "retired_at": "2025-09-07T02:00:00+00:00", "registry": registry}}


# Two pages; a pending order is not retired and does not count.
PAGES = {None: ([order(1, 700, anchored=700), order(2, 300), order(3, 99, status="pending_payment")],
               "ord_3"),
         "ord_3": ([order(4, 534, anchored=200)], None)}


def orders_list(req):
    check_operator()  # the orders service lists for any operator (the gateway decides who may ask)
    assert req.args["scene"] == "forum"
    items, next_after = PAGES[req.args.get("after")]
    return 200, {"items": items, "next_after": next_after}


@pytest.fixture
def report_services(services):
    calculator, orders = services["calculator"], services["orders"]
    calculator.on("GET", "/api/v1/scenes/forum/footprint", (200, FOOTPRINT))
    calculator.on("GET", "/api/v1/scenes/forum/organiser-inputs", (200, INPUTS))
    calculator.on("GET", "/api/v1/factors", (200, FACTORS))
    orders.on("GET", "/api/v1/orders", orders_list)
    return services


def csv_of(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def value(rows, section, item, column="quantity"):
    return next(row[column] for row in rows if row["section"] == section and row["item"] == item)


def pdf_text(response) -> str:
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    return re.sub(r"\s+", " ", text)  # lines wrap where the page is full


def test_the_csv_totals_are_the_orders_and_the_footprint(client, report_services):
    response = client.get(REPORT + "?format=csv", headers=ADMIN)
    rows = csv_of(response)
    assert response.headers["Content-Disposition"] == "attachment; filename=forum-report.csv"
    assert value(rows, "credits_total", "retired_kg") == "1534"       # 700 + 300 + 534, all pages
    assert value(rows, "credits_total", "orders") == "3"
    assert value(rows, "credits_total", "registry_anchored_kg") == "900"
    assert value(rows, "credits_total", "awaiting_registry_kg") == "634"
    assert [row["item"] for row in rows if row["section"] == "credits"] == ["ord_1", "ord_2", "ord_4"]
    assert value(rows, "credits", "ord_2", "registry_records") == "awaiting registry cancellation"
    assert value(rows, "credits", "ord_1", "registry_records") == "CDCER-CAN-1"
    assert value(rows, "credits", "ord_1", "serial_range") == "CDCER-CD-EBUS-2023:000000001-000000700"
    assert value(rows, "footprint_guests", "flights", "kg_co2e") == "800.250"
    assert value(rows, "footprint_guests", "flights", "kg_co2e_without_rf") == "458.250"
    assert value(rows, "footprint_organiser", "electricity", "kg_co2e") == "530.600"
    assert value(rows, "footprint", "total", "kg_co2e") == "1531.100"              # 1000.5 + 530.6
    assert value(rows, "footprint", "total", "kg_co2e_without_rf") == "1189.100"   # 658.5 + 530.6
    assert value(rows, "attendees", "registered") == "250" and value(rows, "attendees", "estimated") == "3"
    assert value(rows, "method", "factor_set", "note") == "2025.1"
    assert value(rows, "coverage", "more", "note").startswith("More than the estimated footprint was offset")
    claim = value(rows, "claim", "en", "note")
    assert "ISO 14068-1" in claim and "not a certification" in claim and "1534 kg CO2e" in claim


def test_the_pdf_says_the_same_in_both_languages(client, report_services):
    response = client.get(REPORT, headers=ADMIN)  # no Accept, no format: the PDF
    assert response.headers["Content-Disposition"] == "attachment; filename=forum-report.pdf"
    text = pdf_text(response)
    for expected in ("1534", "1531.100", "1189.100", "2025.1", "ISO 14068-1", "not a certification",
                     "碳中和", "不是认证", "CDCER-CAN-1", "awaiting registry cancellation", "Green Forum"):
        assert expected in text, expected
    metadata = PdfReader(io.BytesIO(response.data)).metadata
    assert "Event carbon report" in metadata.title and "Green Forum" in metadata.title


def test_a_pdf_has_its_language_in_its_catalogue(client, report_services):
    reader = PdfReader(io.BytesIO(client.get(REPORT + "?format=pdf", headers=ADMIN).data))
    assert reader.trailer["/Root"]["/Lang"] == "zh-CN"


def test_without_the_without_rf_figures_the_report_says_not_recorded(client, report_services):
    plain = {k: v for k, v in FOOTPRINT.items() if "without_rf" not in k}
    report_services["calculator"].on("GET", "/api/v1/scenes/forum/footprint", (200, plain))
    rows = csv_of(client.get(REPORT + "?format=csv", headers=ADMIN))
    assert value(rows, "footprint_guests", "flights", "kg_co2e_without_rf") == "not recorded"
    assert value(rows, "footprint", "total", "kg_co2e_without_rf") == "not recorded"
    assert "not recorded" in pdf_text(client.get(REPORT, headers=ADMIN))
    # As the calculator says it: null totals and the count of estimates without the figure.
    unknown = {**plain, "total_kg_without_rf": None, "categories_without_rf": None,
               "estimates_without_rf_unknown": 2}
    report_services["calculator"].on("GET", "/api/v1/scenes/forum/footprint", (200, unknown))
    rows = csv_of(client.get(REPORT + "?format=csv", headers=ADMIN))
    assert value(rows, "footprint", "total", "kg_co2e_without_rf") == "not recorded"
    assert value(rows, "footprint_guests", "estimates_without_rf_unknown") == "2"
    assert "2 estimates have flights with no recorded figure" in pdf_text(client.get(REPORT, headers=ADMIN))


def test_partial_coverage_supports_no_neutrality_claim(client, report_services, monkeypatch):
    monkeypatch.setitem(PAGES, None, ([order(1, 700)], None))
    rows = csv_of(client.get(REPORT + "?format=csv", headers=ADMIN))
    assert value(rows, "coverage", "partial") == "45.7"                 # 700 / 1531.1
    claim = value(rows, "claim", "en", "note")
    assert claim.startswith("This report does not support a claim of carbon neutrality")
    assert "45.7%" in claim and "not a certification" in claim


def test_no_orders_no_claim(client, report_services, monkeypatch):
    monkeypatch.setitem(PAGES, None, ([], None))
    rows = csv_of(client.get(REPORT + "?format=csv", headers=ADMIN))
    assert value(rows, "credits_total", "retired_kg") == "0" and value(rows, "credits_total", "orders") == "0"
    assert value(rows, "coverage", "none") == "0.0"
    assert "No credits have been retired" in pdf_text(client.get(REPORT, headers=ADMIN))


def test_accept_chooses_the_format_and_format_overrides_it(client, report_services):
    assert client.get(REPORT, headers={**ADMIN, "Accept": "text/csv"}).mimetype == "text/csv"
    assert client.get(REPORT, headers={**ADMIN, "Accept": "application/pdf"}).mimetype == "application/pdf"
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert client.get(REPORT, headers={**ADMIN, "Accept": browser}).mimetype == "application/pdf"
    both = client.get(REPORT + "?format=csv", headers={**ADMIN, "Accept": "application/pdf"})
    assert both.mimetype == "text/csv"


def test_an_unacceptable_type_is_406_json(client, report_services):
    response = client.get(REPORT, headers={**ADMIN, "Accept": "application/json"})
    assert response.status_code == 406 and response.get_json()["error"]["code"] == "not_acceptable"


@pytest.mark.parametrize("chosen", ["xml", "PDF", "", "csv;x", "<script>"])
def test_an_unknown_format_is_422_on_format(client, report_services, chosen):
    response = client.get(REPORT, query_string={"format": chosen}, headers=ADMIN)
    assert response.status_code == 422 and "format" in response.get_json()["error"]["fields"]


def test_the_report_needs_a_key_with_the_scenes_scope(app, client, report_services):
    assert client.get(REPORT).status_code == 401
    assert client.get(REPORT, headers={"X-API-Key": "not-a-key"}).status_code == 403
    _, projects_only = app.extensions["keys"].create("treasurer", {"projects"})
    response = client.get(REPORT, headers={"X-API-Key": projects_only})
    assert (response.status_code, response.get_json()["error"]["code"]) == (403, "insufficient_scope")
    _, organiser = app.extensions["keys"].create("organiser", {"scenes"})
    rows = csv_of(client.get(REPORT + "?format=csv", headers={"X-API-Key": organiser}))
    assert value(rows, "credits_total", "retired_kg") == "1534"  # the orders, read with its assertion


def test_an_unknown_scene_is_404(client, report_services):
    response = client.get("/api/v1/scenes/nowhere/report", headers=ADMIN)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("service, path", [
    ("calculator", "/api/v1/scenes/forum/footprint"), ("calculator", "/api/v1/scenes/forum/organiser-inputs"),
    ("calculator", "/api/v1/factors"), ("orders", "/api/v1/orders")])
def test_a_service_that_fails_is_503_never_500(client, report_services, service, path):
    report_services[service].on("GET", path, (500, {"error": {"code": "internal_error", "message": "x"}}))
    response = client.get(REPORT + "?format=csv", headers=ADMIN)
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "service_unavailable"
    assert service in response.get_json()["error"]["message"]


@pytest.mark.parametrize("service", ["calculator", "orders"])
def test_a_service_that_is_down_is_503(client, report_services, service):
    report_services[service].stop()
    response = client.get(REPORT, headers=ADMIN)
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "service_unavailable"


def test_hostile_texts_are_text_in_the_csv_and_the_pdf(client, report_services):
    hostile = {**SCENE, "name": "=HYPERLINK(\"http://evil.example\")", "name_en": "<b>x</b> @SUM(A1)",
               "location": "+1-1"}
    report_services["calculator"].on("GET", "/api/v1/scenes/forum", (200, hostile))
    rows = csv_of(client.get(REPORT + "?format=csv", headers=ADMIN))
    assert value(rows, "scene", "name", "note") == "'=HYPERLINK(\"http://evil.example\")"
    assert value(rows, "scene", "location", "note") == "'+1-1"
    assert "<b>x</b>" in pdf_text(client.get(REPORT, headers=ADMIN))  # escaped, shown as typed


def test_coverage_states_are_honest():
    def report(retired: int, footprint: str) -> event_report.EventReport:
        orders = [order(1, retired)] if retired else []
        return event_report.compose(SCENE, {**FOOTPRINT, "total_kg": float(footprint),
                                            "categories": {"flights": float(footprint)}},
                                    {**INPUTS, "lines": [], "total_kg": 0, "categories": {}}, FACTORS, orders,
                                    event_report.datetime.now(event_report.UTC))
    assert report(0, "0").coverage == "no_footprint"
    assert (report(0, "10").coverage, report(0, "10").coverage_percent) == ("none", 0)
    assert (report(5, "10").coverage, str(report(5, "10").coverage_percent)) == ("partial", "50.0")
    assert (report(10, "10").coverage, report(10, "10").supports_neutrality) == ("whole", True)
    more = report(11, "10.5")
    assert (more.coverage, more.coverage_percent, more.supports_neutrality) == ("more", None, True)
    assert "more than the estimated footprint" in event_report.claim(more)["en"]
    assert "多于估算碳足迹" in event_report.claim(more)["zh"]
