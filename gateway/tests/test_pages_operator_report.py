"""The dashboard's organiser inputs form and its event report downloads, rendered by the real
gateway against stand-in services (gateway/tests/pages_support.py)."""
from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from diandian_common.auth import check_operator
from gateway.tests.pages_support import SCENE, Markup, csrf_of, login, page
from gateway.tests.test_event_report import FACTORS, FOOTPRINT, INPUTS, orders_list

DASHBOARD = "/operator/scenes/forum"
FORM = "/operator/scenes/forum/organiser-inputs"


@pytest.fixture
def calculator(services):
    """The calculator's stand-in with the report's reads and the organiser's writes (PUT, PATCH)."""
    fake = services["calculator"]
    app = fake.server.app
    app.add_url_rule("/api/v1/<path:_rest>", "writes", app.view_functions["answer"], methods=["PUT", "PATCH"])
    fake.on("GET", "/api/v1/scenes/forum/footprint", (200, FOOTPRINT))
    fake.on("GET", "/api/v1/scenes/forum/organiser-inputs", (200, INPUTS))
    fake.on("GET", "/api/v1/factors", (200, FACTORS))
    services["orders"].on("GET", "/api/v1/orders", orders_list)

    def put_inputs(req):
        check_operator("scenes")
        body = req.get_json()
        if body.get("waste_kg") is not None and "waste_treatment" not in body:
            return 422, {"error": {"code": "validation_error", "message": "some fields are invalid",
                                   "fields": {"waste_treatment": ["required with waste_kg"]}}}
        if not isinstance((body.get("catering") or {}).get("meat_meals", 0), int):
            return 422, {"error": {"code": "validation_error", "message": "some fields are invalid",
                                   "fields": {"catering": {"meat_meals": ["Not a valid integer."]}}}}
        return 200, {**INPUTS, **body}

    def patch_scene(req):
        check_operator("scenes")
        return 200, {**SCENE, **req.get_json()}

    fake.on("PUT", "/api/v1/scenes/forum/organiser-inputs", put_inputs)
    fake.on("PATCH", "/api/v1/scenes/forum", patch_scene)
    return fake


def writes(fake) -> list[tuple[str, dict]]:
    return [(r["method"], r["json"]) for r in fake.requests if r["method"] in ("PUT", "PATCH")]


def test_the_dashboard_offers_the_report_and_the_inputs_as_stored(client, calculator):
    login(client)
    markup = Markup(page(client, DASHBOARD, lang="en"))
    assert markup.find("a", href="/operator/scenes/forum/report.pdf", download="forum-report.pdf")
    assert markup.find("a", href="/operator/scenes/forum/report.csv", download="forum-report.csv")
    assert markup.find("input", name="attendees")[0]["value"] == "250"
    assert markup.find("input", name="venue_kwh")[0]["value"] == "1000"
    assert markup.find("input", name="meat_meals")[0]["value"] == ""
    assert markup.find("input", name="csrf", value=csrf_of(page(client, DASHBOARD)))
    assert "1000 kWh × 0.5306 kg CO2e per kWh = 530.6 kg CO2e" in page(client, DASHBOARD, lang="en")


def test_the_organiser_saves_the_inputs_through_the_gateway(client, calculator):
    login(client)
    csrf = csrf_of(page(client, DASHBOARD))
    response = client.post(FORM, data={
        "csrf": csrf, "province": "CN-SC", "attendees": "250", "venue_kwh": "12000.5", "meat_meals": "300",
        "vegetarian_meals": "", "waste_kg": "800", "waste_treatment": "landfill"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/operator/scenes/forum?saved=1#organiser-inputs"
    assert writes(calculator) == [
        ("PATCH", {"province": "CN-SC"}),
        ("PUT", {"attendees": 250, "venue_kwh": 12000.5, "waste_kg": 800, "catering": {"meat_meals": 300},
                 "waste_treatment": "landfill"})]
    assert "填报内容已保存" in page(client, "/operator/scenes/forum?saved=1")


def test_an_unchanged_province_is_not_written(client, calculator):
    login(client)
    client.post(FORM, data={"csrf": csrf_of(page(client, DASHBOARD)), "province": "", "attendees": "80"})
    assert writes(calculator) == [("PUT", {"attendees": 80})]


def test_the_apis_refusals_show_on_their_fields_with_the_values_kept(client, calculator):
    login(client)
    csrf = csrf_of(page(client, DASHBOARD))
    response = client.post(FORM, data={"csrf": csrf, "waste_kg": "800", "meat_meals": "2.5"},
                           headers={"Accept-Language": "en"})
    assert response.status_code == 422
    markup = Markup(response.get_data(as_text=True))
    waste_error = markup.find("p", id="organiser-waste_treatment-error")[0]
    assert "hidden" not in waste_error
    assert "required with waste_kg" in response.get_data(as_text=True)
    assert markup.find("input", name="waste_kg")[0]["value"] == "800"


def test_the_form_needs_its_csrf_token(client, calculator):
    login(client)
    assert client.post(FORM, data={"attendees": "1"}).status_code == 403
    assert writes(calculator) == []


def test_the_report_downloads_through_the_session(client, calculator):
    login(client)
    pdf = client.get("/operator/scenes/forum/report.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Disposition"] == "attachment; filename=forum-report.pdf"
    assert "1534" in "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    table = client.get("/operator/scenes/forum/report.csv")
    assert table.status_code == 200 and table.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "credits_total,retired_kg,1534" in table.get_data().decode("utf-8-sig")
    assert client.get("/operator/scenes/forum/report.xml").status_code == 404


def test_a_key_without_the_scenes_scope_gets_no_report(app, client, calculator):
    _, treasurer = app.extensions["keys"].create("treasurer", {"projects"})
    login(client, treasurer)
    assert client.get("/operator/scenes/forum/report.pdf").status_code == 403


def test_the_report_of_an_unknown_scene_is_404(client, calculator):
    login(client)
    assert client.get("/operator/scenes/nowhere/report.csv").status_code == 404
