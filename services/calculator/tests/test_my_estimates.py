"""GET /api/v1/my-estimates: a guest's own footprints, for the gateway's /me page."""
from __future__ import annotations

import pytest

from diandian_common.testing import GuestClient

TRIP = {"kind": "trip", "activities": [{"type": "bus", "distance_km": 10}]}
LIFE = {"kind": "life", "activities": [{"type": "electricity", "kwh": 100, "period": "month"}]}


def place(client, participant_id, body=TRIP):
    response = GuestClient(client, participant_id).post("/api/v1/estimates", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_lists_only_the_guests_own_estimates_newest_first(client):
    mine = [place(client, "p_me"), place(client, "p_me", LIFE), place(client, "p_me")]
    theirs = place(client, "p_other")
    client.post("/api/v1/estimates", json=TRIP)  # anonymous: nobody's
    body = GuestClient(client, "p_me").get("/api/v1/my-estimates").get_json()
    assert [e["id"] for e in body["items"]] == list(reversed(mine))
    assert theirs not in [e["id"] for e in body["items"]]
    assert [e["kind"] for e in body["items"]] == ["trip", "life", "trip"]
    assert body["items"][0]["total_kg"] > 0 and body["items"][0]["created_at"]
    assert body["next_before"] is None


def test_pages_with_next_before(client):
    mine = [place(client, "p_pages") for _ in range(3)]
    guest = GuestClient(client, "p_pages")
    first = guest.get("/api/v1/my-estimates", query_string={"limit": 2}).get_json()
    assert [e["id"] for e in first["items"]] == [mine[2], mine[1]]
    second = guest.get("/api/v1/my-estimates", query_string={"limit": 2, "before": first["next_before"]})
    assert [e["id"] for e in second.get_json()["items"]] == [mine[0]]
    assert second.get_json()["next_before"] is None


def test_without_the_gateways_assertion_is_401(client):
    response = client.get("/api/v1/my-estimates")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def test_a_forged_assertion_is_403(client):
    assert client.get("/api/v1/my-estimates", headers={"X-Diandian-Participant": "x.y.z"}).status_code == 403


def test_another_guests_estimate_as_cursor_is_refused(client):
    theirs = place(client, "p_theirs")
    response = GuestClient(client, "p_snoop").get("/api/v1/my-estimates", query_string={"before": theirs})
    assert response.status_code == 422 and "before" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("query", [
    {"limit": "0"}, {"limit": "51"}, {"limit": "1e9"}, {"limit": "9" * 40}, {"before": "x" * 37},
    {"before": ""}, {"before": "\u202e\x00"},
])
def test_hostile_parameters_are_422(client, query):
    response = GuestClient(client, "p_me").get("/api/v1/my-estimates", query_string=query)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["error"]["fields"]
