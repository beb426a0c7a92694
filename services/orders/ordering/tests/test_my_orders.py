"""GET /api/v1/my-orders: a guest's own orders, for the gateway's /me page."""
from __future__ import annotations

import uuid

import pytest

from diandian_common.testing import GuestClient


def place(client, participant_id, kg=5):
    project = client.get("/api/v1/projects").get_json()["items"][0]
    response = GuestClient(client, participant_id).post(
        "/api/v1/orders", json={"project_id": project["id"], "quantity_kg": kg,
                                "participant": {"display_name": "王芳"}},
        headers={"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201
    return response.get_json()["id"]


def test_lists_only_the_guests_own_orders_newest_first(client):
    mine = [place(client, "p-me", kg) for kg in (1, 2, 3)]
    other = place(client, "p-other")
    response = GuestClient(client, "p-me").get("/api/v1/my-orders")
    assert response.status_code == 200
    body = response.get_json()
    assert [o["id"] for o in body["items"]] == list(reversed(mine))
    assert other not in [o["id"] for o in body["items"]]
    assert all(o["participant"]["id"] == "p-me" for o in body["items"])
    assert body["next_before"] is None


def test_pages_with_next_before(client):
    mine = [place(client, "p-pages", kg) for kg in (1, 2, 3)]
    guest = GuestClient(client, "p-pages")
    first = guest.get("/api/v1/my-orders", query_string={"limit": 2}).get_json()
    assert [o["id"] for o in first["items"]] == [mine[2], mine[1]]
    second = guest.get("/api/v1/my-orders",
                       query_string={"limit": 2, "before": first["next_before"]}).get_json()
    assert [o["id"] for o in second["items"]] == [mine[0]] and second["next_before"] is None


def test_a_guest_with_no_orders_gets_an_empty_page(client):
    body = GuestClient(client, "p-nobody").get("/api/v1/my-orders").get_json()
    assert body == {"items": [], "next_before": None}


def test_without_the_gateways_assertion_is_401(client):
    response = client.get("/api/v1/my-orders")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_forged_assertion_is_403(client):
    response = client.get("/api/v1/my-orders", headers={"X-Diandian-Participant": "forged.token.sig"})
    assert response.status_code == 403


def test_another_guests_order_as_cursor_is_refused(client):
    theirs = place(client, "p-theirs")
    response = GuestClient(client, "p-snoop").get("/api/v1/my-orders", query_string={"before": theirs})
    assert response.status_code == 422 and "before" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("query", [
    {"limit": "0"}, {"limit": "51"}, {"limit": "abc"}, {"limit": "9" * 40}, {"before": "x" * 65},
    {"before": ""}, {"before": "\u202e\x00"},
])
def test_hostile_parameters_are_422(client, query):
    response = GuestClient(client, "p-me").get("/api/v1/my-orders", query_string=query)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["error"]["fields"]
