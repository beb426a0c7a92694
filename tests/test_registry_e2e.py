"""Registry anchoring end to end through the gateway with real workers (issue 19, "done when"):
a registry retirement recorded for a project shows on the certificates it covers and on none
other — in the API, the verification, the re-rendered PDF and the certificate page."""
from __future__ import annotations

import io
import re
import uuid
from datetime import date

import pypdf
import pytest

from tests.stack import OPERATOR_KEY

pytestmark = pytest.mark.integration

OPERATOR = {"X-API-Key": OPERATOR_KEY}


def pdf_text(driver, certificate_id: str) -> str:
    pdf = driver.api("GET", f"/api/v1/certificates/{certificate_id}/pdf")
    assert pdf.status_code == 200, pdf.text
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf.content)).pages)
    return re.sub(r"\s+", "", text)


def test_a_registry_retirement_shows_on_the_certificates_it_covers_and_on_none_other(driver):
    code = f"CDCER-RGR-{uuid.uuid4().hex[:6].upper()}"
    created = driver.api("POST", "/api/v1/projects", headers=OPERATOR, json={
        "code": code, "name": "登记簿锚定测试林", "name_en": "Registry Anchoring Test Forest",
        "type": "forestry_carbon_sink", "location": "Chengdu", "vintage": 2025, "price_fen_per_tonne": 8000})
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    issued = driver.api("POST", f"/api/v1/projects/{project_id}/issuances", headers=OPERATOR,
                        json={"first": 1, "last": 5000})
    assert issued.status_code == 201, issued.text

    # Three orders, one after another so their serials follow: 1-600, 601-1200, 1201-1500.
    orders = []
    for kg in (600, 600, 300):
        guest = {"id": f"e2e-rgr-{uuid.uuid4().hex[:6]}", "display_name": "登记 Registry"}
        orders.append(driver.place_and_pay_order(project_id, kg, guest, complete=True))
    first, second, third = orders
    assert [o["retirement"]["serial_first"] for o in orders] == [1, 601, 1201]
    certificates = [o["certificate"]["id"] for o in orders]
    for cert_id in certificates:
        assert driver.api("GET", f"/api/v1/certificates/{cert_id}").json()["registry"] is None
        assert "等待登记簿注销" in pdf_text(driver, cert_id)

    # One tonne cancelled at the registry: the first order wholly, 400 kg of the second.
    record = {"quantity_t": 1, "registry_serial_first": "CCER-2025-000001",
              "registry_serial_last": "CCER-2025-001000",
              "cancellation_id": f"CXL-{uuid.uuid4().hex[:8].upper()}",
              "url": "https://registry.example.cn/cancellations/e2e", "retired_on": date.today().isoformat()}
    recorded = driver.api("POST", f"/api/v1/projects/{project_id}/registry-retirements", headers=OPERATOR,
                          json=record)
    assert recorded.status_code == 201, recorded.text
    anchor = {"cancellation_id": record["cancellation_id"], "url": record["url"],
              "retired_on": record["retired_on"]}

    def registry_of(cert_id):
        return driver.api("GET", f"/api/v1/certificates/{cert_id}").json()["registry"]

    shown = driver.wait_for(lambda: registry_of(certificates[1]) and registry_of(certificates[0]),
                            what="the registry record on the covered certificates")
    assert shown == {"anchored_kg": 600, "complete": True, "records": [{**anchor, "anchored_kg": 600}]}
    assert registry_of(certificates[1]) == {"anchored_kg": 400, "complete": False,
                                            "records": [{**anchor, "anchored_kg": 400}]}
    # The orders say the same as the certificates.
    assert driver.order(first["id"])["retirement"]["registry"] == registry_of(certificates[0])

    # The PDFs were rendered again: the record, and the rest of the second order awaited.
    driver.wait_for(lambda: all(record["cancellation_id"] in pdf_text(driver, cert_id)
                                for cert_id in certificates[:2]),
                    what="the covered certificates' PDFs rendered again")
    covered = pdf_text(driver, certificates[0])
    assert record["cancellation_id"] in covered and record["url"] in covered and "等待" not in covered
    partly = pdf_text(driver, certificates[1])
    assert "其余200千克等待登记簿注销" in partly and "200kgmoreawaitingregistrycancellation" in partly

    # On none other: the third order's certificate still awaits it, in the API and the PDF.
    assert registry_of(certificates[2]) is None
    assert record["cancellation_id"] not in pdf_text(driver, certificates[2])
    assert "等待登记簿注销" in pdf_text(driver, certificates[2])
    assert driver.order(third["id"])["retirement"]["registry"] is None

    # The public verification (masked) and the certificate page show it too.
    verify_url = first["certificate"]["verify_url"]
    masked = driver.api("GET", f"/api/v1/certificates/verify/{verify_url.rsplit('/', 1)[1]}",
                        params={"mask_holder": "true"}).json()
    assert masked["certificate"]["registry"]["records"][0]["cancellation_id"] == record["cancellation_id"]
    page = driver.api("GET", f"/c/{certificates[0]}", headers={"Accept-Language": "en"}).text
    assert f'href="{record["url"]}"' in page and record["cancellation_id"] in page
    other = driver.api("GET", f"/c/{certificates[2]}", headers={"Accept-Language": "en"}).text
    assert "Awaiting registry cancellation" in other and record["cancellation_id"] not in other
