"""The order pipeline end to end through the gateway (SPEC §3), real processes only."""
from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.integration


def place_order(stack, project_id: str, kg, participant: dict, scene: str | None = None, key=None):
    body = {"project_id": project_id, "quantity_kg": kg, "participant": participant}
    if scene:
        body["scene"] = scene
    response = stack.api("POST", "/api/v1/orders", json=body,
                         headers={"Idempotency-Key": key or uuid.uuid4().hex})
    assert response.status_code in (200, 201), response.text
    return response.json()


def completed(stack, order_id: str):
    order = stack.api("GET", f"/api/v1/orders/{order_id}").json()
    return order if order["status"] == "completed" else None


def test_gateway_health_names_every_service(stack):
    body = stack.api("GET", "/healthz").json()
    assert body["status"] == "ok"
    assert set(body["services"]) == {"calculator", "orders", "certificates", "ranking", "redis"}


def test_order_from_placement_to_completed(stack):
    projects = stack.api("GET", "/api/v1/projects").json()["items"]
    assert len(projects) >= 3
    project = projects[0]
    scenes = stack.api("GET", "/api/v1/scenes").json()["items"]
    forum = next(s for s in scenes if s["slug"] == "cdcn-forum-2021")
    participant = {"id": f"guest-{uuid.uuid4().hex[:8]}", "display_name": "李雷 Li Lei",
                   "organization": "Diandian Test Org"}

    created = place_order(stack, project["id"], "12.4", participant, scene=forum["slug"])
    assert created["status"] == "pending_payment"
    assert created["quantity_kg"] == 13  # rounded up to whole kilograms
    assert created["amount_fen"] == -(-13 * project["price_fen_per_tonne"] // 1000)

    paid = stack.api("POST", f"/api/v1/orders/{created['id']}/payment")
    assert paid.status_code == 202, paid.text

    order = stack.wait_for(lambda: completed(stack, created["id"]), timeout=90, what="order completed")
    retirement = order["retirement"]
    assert retirement["serial_last"] - retirement["serial_first"] + 1 == 13
    assert retirement["serial_range"] == (
        f"{project['code']}-{project['vintage']}:{retirement['serial_first']:09d}-{retirement['serial_last']:09d}")

    # The certificate: JSON, the PDF, and the QR code inside the PDF decoding to verify_url.
    cert = order["certificate"]
    cert_json = stack.api("GET", f"/api/v1/certificates/{cert['id']}").json()
    assert cert_json["order_id"] == order["id"]
    assert cert_json["serial_range"] == retirement["serial_range"]
    pdf = stack.api("GET", f"/api/v1/certificates/{cert['id']}/pdf")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"].startswith("application/pdf")
    import pypdfium2
    import zxingcpp
    image = pypdfium2.PdfDocument(pdf.content)[0].render(scale=3).to_pil()
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [cert["verify_url"]]
    code = cert["verify_url"].rsplit("/", 1)[1]
    verified = stack.api("GET", f"/api/v1/certificates/verify/{code}")
    assert verified.status_code == 200 and verified.json()["valid"] is True

    # The ranking: the participant is on the scene board with the order's kilograms.
    def ranked():
        r = stack.api("GET", f"/api/v1/rankings/participants/{participant['id']}",
                      params={"scene": forum["slug"]})
        return r.json() if r.status_code == 200 else None
    rank = stack.wait_for(ranked, timeout=30, what="participant ranked")
    assert rank["kg"] == 13
    board = stack.api("GET", "/api/v1/rankings", params={"board": "individual", "scene": forum["slug"]}).json()
    assert any(item["participant_id"] == participant["id"] for item in board["items"])

    # Paying again changes nothing; the ledger holds the entry once.
    assert stack.api("POST", f"/api/v1/orders/{created['id']}/payment").status_code == 202
    ledger = stack.api("GET", "/api/v1/ledger", params={"project": project["id"]}).json()["items"]
    assert [e["order_id"] for e in ledger].count(order["id"]) == 1


def test_burst_of_orders_all_complete_with_disjoint_serials(stack):
    project = stack.api("GET", "/api/v1/projects").json()["items"][1]
    orders = [place_order(stack, project["id"], 5 + i, {"id": f"burst-{i}", "display_name": f"Guest {i}"})
              for i in range(8)]
    for o in orders:
        assert stack.api("POST", f"/api/v1/orders/{o['id']}/payment").status_code == 202
    done = [stack.wait_for(lambda o=o: completed(stack, o["id"]), timeout=120, what=f"{o['id']} completed")
            for o in orders]
    ranges = sorted((d["retirement"]["serial_first"], d["retirement"]["serial_last"]) for d in done)
    for (_, last), (first, _) in zip(ranges, ranges[1:]):
        assert last < first, f"overlapping serial ranges {ranges}"
    assert len({d["certificate"]["id"] for d in done}) == len(done)


def test_errors_have_one_shape_through_the_gateway(stack):
    bad_json = stack.api("POST", "/api/v1/orders", data="{nope", headers={
        "Content-Type": "application/json", "Idempotency-Key": "x"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    invalid = stack.api("POST", "/api/v1/orders", json={"project_id": "x"}, headers={"Idempotency-Key": "y"})
    assert invalid.status_code == 422 and "participant" in invalid.json()["error"]["fields"]
    for path in ("/api/v1/orders/ord_missing", "/api/v1/certificates/cert_missing",
                 "/api/v1/scenes/no-such-scene", "/api/v1/nothing-here"):
        r = stack.api("GET", path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (path, r.text)
