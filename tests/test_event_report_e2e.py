"""The event report end to end through the gateway with real services and workers (issue 19,
"done when"): guests of the seeded forum estimate their trips and neutralise them, its organiser
enters the venue's electricity and the catering, then downloads the report as CSV and PDF, whose
totals are the orders' and the footprint's; the claim follows the coverage (none while the
venue and catering are not offset, carbon neutrality once the organiser offsets the rest)."""
from __future__ import annotations

import csv
import io
import math
import re
import uuid
from decimal import Decimal

import pypdf
import pytest

from tests.stack import OPERATOR_KEY

pytestmark = pytest.mark.integration

FORUM = "cdcn-forum-2021"  # seeded by the calculator's seed-demo (services/calculator/cli.py)
OPERATOR = {"X-API-Key": OPERATOR_KEY}
TRIPS = ([{"type": "flight", "from": "PEK", "to": "CTU", "cabin": "economy"},
          {"type": "hotel", "nights": 2}],
         [{"type": "rail", "distance_km": 310}, {"type": "meal", "count": 4}])


def neutralised_orders(driver) -> list[dict]:
    """Every retired or completed order of the forum, read as an operator (all pages)."""
    found, after = [], None
    while True:
        params = {"scene": FORUM, "limit": 200, **({"after": after} if after else {})}
        page = driver.api("GET", "/api/v1/orders", params=params, headers=OPERATOR)
        assert page.status_code == 200, page.text
        found += [o for o in page.json()["items"] if o["status"] in ("retired", "completed")]
        after = page.json()["next_after"]
        if not after:
            return found


def csv_rows(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def cell(rows, section, item, column="quantity") -> str:
    return next(row[column] for row in rows if row["section"] == section and row["item"] == item)


def test_the_organiser_downloads_a_report_whose_totals_are_the_orders(driver):
    project = driver.projects()[0]
    for activities in TRIPS:
        guest = {"id": f"e2e-report-{uuid.uuid4().hex[:6]}", "display_name": "论坛嘉宾 Forum guest"}
        estimate = driver.api("POST", "/api/v1/estimates", guest=guest["id"],
                              json={"kind": "trip", "scene": FORUM, "activities": activities})
        assert estimate.status_code == 201, estimate.text
        driver.place_and_pay_order(project["id"], participant=guest, scene=FORUM, complete=True,
                                   estimate_id=estimate.json()["id"])

    inputs = driver.api("PUT", f"/api/v1/scenes/{FORUM}/organiser-inputs", headers=OPERATOR, json={
        "attendees": 300, "venue_kwh": 4200, "catering": {"meat_meals": 450, "vegetarian_meals": 150}})
    assert inputs.status_code == 200, inputs.text
    organiser_kg = Decimal(str(inputs.json()["total_kg"]))
    assert organiser_kg > 0
    assert [line["type"] for line in inputs.json()["lines"]] == ["electricity", "meal", "meal"]

    def stable_report():
        """The CSV with the orders as they were before and after it (no order completing between)."""
        before = neutralised_orders(driver)
        report = driver.api("GET", f"/api/v1/scenes/{FORUM}/report", params={"format": "csv"},
                            headers=OPERATOR)
        assert report.status_code == 200, report.text
        return (before, report) if neutralised_orders(driver) == before else None

    orders, report = driver.wait_for(stable_report, what="a report with no order completing meanwhile")
    rows = csv_rows(report.content)
    total_kg = Decimal(cell(rows, "footprint", "total", "kg_co2e"))
    retired_kg = sum(order["quantity_kg"] for order in orders)
    assert int(cell(rows, "credits_total", "retired_kg")) == retired_kg
    if retired_kg < total_kg:  # the venue and the catering are not offset yet: no neutrality claim
        assert cell(rows, "claim", "en", "note").startswith("This report does not support a claim")
        organiser = {"id": f"e2e-organiser-{uuid.uuid4().hex[:6]}", "display_name": "主办方 Organiser"}
        driver.place_and_pay_order(project["id"], math.ceil(total_kg - retired_kg), organiser, scene=FORUM,
                                   complete=True)
        orders, report = driver.wait_for(stable_report, what="the report once the rest is offset")
    assert report.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert report.headers["Content-Disposition"] == f"attachment; filename={FORUM}-report.csv"
    rows = csv_rows(report.content)
    retired_kg = sum(order["quantity_kg"] for order in orders)
    assert int(cell(rows, "credits_total", "retired_kg")) == retired_kg
    assert int(cell(rows, "credits_total", "orders")) == len(orders) >= 2
    listed = sorted(row["item"] for row in rows if row["section"] == "credits")
    assert listed == sorted(order["id"] for order in orders)

    footprint = driver.api("GET", f"/api/v1/scenes/{FORUM}/footprint").json()
    guests_kg = Decimal(str(footprint["total_kg"])).quantize(Decimal("0.001"))
    assert Decimal(cell(rows, "footprint_guests", "total", "kg_co2e")) == guests_kg
    assert Decimal(cell(rows, "footprint_organiser", "total", "kg_co2e")) == organiser_kg
    total_kg = Decimal(cell(rows, "footprint", "total", "kg_co2e"))
    assert total_kg == guests_kg + organiser_kg
    assert cell(rows, "attendees", "registered") == "300"
    assert int(cell(rows, "attendees", "estimated")) == footprint["participants"]
    version = driver.api("GET", "/api/v1/factors").json()["version"]
    assert cell(rows, "method", "factor_set", "note") == version
    assert retired_kg >= total_kg
    coverage = cell(rows, "coverage", "more" if retired_kg > total_kg else "whole", "note")
    assert coverage.startswith("More than the estimated footprint was offset" if retired_kg > total_kg
                               else "100.0% of the estimated footprint is offset")
    claim = cell(rows, "claim", "en", "note")
    assert claim.startswith("Carbon-neutrality claim (worded after ISO 14068-1)")
    assert "not a certification" in claim and f"{retired_kg} kg CO2e" in claim

    pdf = driver.api("GET", f"/api/v1/scenes/{FORUM}/report",
                     headers={**OPERATOR, "Accept": "application/pdf"})
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(pdf.content))
    text = re.sub(r"\s+", " ", "\n".join(page.extract_text() for page in reader.pages))
    for expected in (f"{retired_kg} kg CO2e", f"{total_kg:.3f}", f"{organiser_kg:.3f}",
                     f"Factor set {version}", "ISO 14068-1", "not a certification", "碳中和"):
        assert expected in text, expected
    assert "Event carbon report" in reader.metadata.title
    assert driver.api("GET", f"/api/v1/scenes/{FORUM}/report").status_code == 401  # no key, no report
