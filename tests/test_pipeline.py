"""The order pipeline end to end through the gateway (docs/contract.md §3), real processes only."""
from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.integration


def test_gateway_health_names_every_service(driver):
    body = driver.api("GET", "/healthz").json()
    assert body["status"] == "ok"
    assert set(body["services"]) == {"calculator", "orders", "certificates", "ranking", "redis"}


def test_order_from_placement_to_completed(driver):
    projects = driver.api("GET", "/api/v1/projects").json()["items"]
    assert len(projects) >= 3
    project = projects[0]
    scenes = driver.api("GET", "/api/v1/scenes").json()["items"]
    forum = next(s for s in scenes if s["slug"] == "cdcn-forum-2021")
    participant = {"id": f"guest-{uuid.uuid4().hex[:8]}", "display_name": "李雷 Li Lei",
                   "organization": "Diandian Test Org"}

    created = driver.place_and_pay_order(project["id"], "12.4", participant, scene=forum["slug"])
    assert created["status"] == "pending_payment"
    assert created["quantity_kg"] == 13  # rounded up to whole kilograms
    assert created["amount_fen"] == -(-13 * project["price_fen_per_tonne"] // 1000)

    order = driver.wait_completed(created["id"])
    retirement = order["retirement"]
    assert retirement["serial_last"] - retirement["serial_first"] + 1 == 13
    assert retirement["serial_range"] == (
        f"{project['code']}-{project['vintage']}:{retirement['serial_first']:09d}-{retirement['serial_last']:09d}")

    # The certificate: JSON, the PDF, and the QR code inside the PDF decoding to verify_url.
    cert = order["certificate"]
    cert_json = driver.api("GET", f"/api/v1/certificates/{cert['id']}").json()
    assert cert_json["order_id"] == order["id"]
    assert cert_json["serial_range"] == retirement["serial_range"]
    pdf = driver.api("GET", f"/api/v1/certificates/{cert['id']}/pdf")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"].startswith("application/pdf")
    import pypdfium2
    import zxingcpp
    image = pypdfium2.PdfDocument(pdf.content)[0].render(scale=3).to_pil()
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [cert["verify_url"]]
    code = cert["verify_url"].rsplit("/", 1)[1]
    verified = driver.api("GET", f"/api/v1/certificates/verify/{code}")
    assert verified.status_code == 200 and verified.json()["valid"] is True

    # The ranking: the participant is on the scene board with the order's kilograms.
    rank = driver.wait_for(lambda: driver.standing(participant["id"], scene=forum["slug"]), timeout=30,
                           what="participant ranked")
    assert rank["kg"] == 13
    board = driver.api("GET", "/api/v1/rankings", params={"board": "individual", "scene": forum["slug"]}).json()
    assert any(item["participant_id"] == driver.participant_id(participant["id"]) for item in board["items"])

    # Paying again changes nothing; the ledger holds the entry once.
    driver.pay(created["id"])
    ledger = driver.api("GET", "/api/v1/ledger", params={"project": project["id"]}).json()["items"]
    assert [e["order_id"] for e in ledger].count(order["id"]) == 1


def test_burst_of_orders_all_complete_with_disjoint_serials(driver):
    project = driver.projects()[1]
    orders = [driver.place_and_pay_order(project["id"], 5 + i, {"id": f"burst-{i}", "display_name": f"Guest {i}"})
              for i in range(8)]
    done = [driver.wait_completed(o["id"], timeout=120) for o in orders]
    ranges = sorted((d["retirement"]["serial_first"], d["retirement"]["serial_last"]) for d in done)
    for (_, last), (first, _) in zip(ranges, ranges[1:]):
        assert last < first, f"overlapping serial ranges {ranges}"
    assert len({d["certificate"]["id"] for d in done}) == len(done)


def test_errors_have_one_shape_through_the_gateway(driver):
    bad_json = driver.api("POST", "/api/v1/orders", data="{nope", headers={
        "Content-Type": "application/json", "Idempotency-Key": "x"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    invalid = driver.api("POST", "/api/v1/orders", json={"project_id": "x"}, headers={"Idempotency-Key": "y"})
    assert invalid.status_code == 422 and "participant" in invalid.json()["error"]["fields"]
    for path in ("/api/v1/orders/ord_missing", "/api/v1/certificates/cert_missing",
                 "/api/v1/scenes/no-such-scene", "/api/v1/nothing-here"):
        r = driver.api("GET", path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (path, r.text)
