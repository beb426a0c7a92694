"""The estimate API with factor set 2025.2 (issue 19): the fields guests send (party_size,
province), the figures without radiative forcing, the deployment's RF switch, and the
event footprint with and without RF."""
from __future__ import annotations

import pytest

from diandian_common.testing import GuestClient


def post(client, *activities, kind="trip", **extra):
    return client.post("/api/v1/estimates", json={"kind": kind, "activities": list(activities), **extra})


def test_flight_line_carries_both_figures_and_the_rf_note(client):
    body = post(client, {"type": "flight", "from": "PEK", "to": "CTU"}).get_json()
    [line] = body["items"]
    assert (line["kg"], line["kg_without_rf"]) == (183.449, 108.379)
    assert line["factor"]["radiative_forcing"] is True and line["factor"]["gases"] == "CO2e"
    assert line["factor"]["edition"] and line["factor"]["url"].startswith("https://www.gov.uk/")
    assert (body["total_kg"], body["total_kg_without_rf"]) == (183.449, 108.379)
    assert "radiative" in body["notes"]["radiative_forcing"]["en"].lower()
    assert "辐射强迫" in body["notes"]["radiative_forcing"]["zh"]


def test_the_deployment_can_price_flights_without_rf(client, monkeypatch):
    monkeypatch.setenv("CALCULATOR_FLIGHT_RF", "false")
    body = post(client, {"type": "flight", "from": "PEK", "to": "CTU"}).get_json()
    [line] = body["items"]
    assert (line["kg"], line["kg_without_rf"]) == (108.379, 108.379)
    assert line["factor"]["radiative_forcing"] is False
    assert line["factor"]["key"] == "flight.international.economy.without_rf"
    assert body["total_kg"] == body["total_kg_without_rf"] == 108.379


def test_party_size_and_province_are_taken_and_shown(client):
    body = post(client, {"type": "taxi", "distance_km": 15, "party_size": 3},
                {"type": "electricity", "kwh": 300, "province": "CN-SC"}).get_json()
    taxi, power = body["items"]
    assert (taxi["kg"], taxi["party_size"], taxi["share"]) == (1.04, 3, 0.333333)
    assert "÷ 3 people sharing the taxi" in taxi["calculation"] and "stands in" in taxi["note"]
    assert (power["kg"], power["province"], power["factor"]["key"]) == (42.12, "CN-SC", "electricity.CN-SC")
    assert power["factor"]["gases"] == "CO2" and power["factor"]["year"] == 2022
    assert "kg_without_rf" not in power and "radiative_forcing" not in power["factor"]


@pytest.mark.parametrize("activity, field", [
    ({"type": "taxi", "distance_km": 5, "party_size": 0}, "party_size"),
    ({"type": "taxi", "distance_km": 5, "party_size": 501}, "party_size"),
    ({"type": "taxi", "distance_km": 5, "party_size": 2.5}, "party_size"),
    ({"type": "car", "distance_km": 5, "party_size": 2, "passengers": 2}, "passengers"),
    ({"type": "taxi", "distance_km": 5, "passengers": 2}, "passengers"),   # never a taxi's field
    ({"type": "electricity", "kwh": 5, "province": "SC"}, "province"),
    ({"type": "electricity", "kwh": 5, "province": "cn-sc"}, "province"),
    ({"type": "rail", "distance_km": 5, "province": "CN-SC"}, "province"),  # a train crosses grids
])
def test_bad_party_sizes_and_provinces_are_422_on_the_field(client, activity, field):
    response = post(client, activity)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]["activities"]["0"]


def test_an_event_footprint_with_and_without_rf(client, make_scene):
    make_scene()

    def estimate(participant, *activities):
        response = GuestClient(client, participant).post("/api/v1/estimates", json={
            "kind": "trip", "scene": "cdcn-forum-2021", "activities": list(activities)})
        assert response.status_code == 201

    estimate("alice", {"type": "flight", "from": "PEK", "to": "CTU"})     # 183.449 / 108.379
    estimate("bob", {"type": "hotel", "nights": 2})                        # 107
    body = client.get("/api/v1/scenes/cdcn-forum-2021/footprint").get_json()
    assert (body["total_kg"], body["total_kg_without_rf"]) == (290.449, 215.379)
    assert body["categories_without_rf"]["flights"] == 108.379
    assert body["categories_without_rf"]["accommodation"] == body["categories"]["accommodation"] == 107.0
    assert body["estimates_without_rf_unknown"] == 0


def test_an_estimate_of_set_2025_1_shows_its_flights_without_rf_as_unknown(client, monkeypatch):
    monkeypatch.setenv("CALCULATOR_FACTOR_SET", "2025.1")
    body = post(client, {"type": "flight", "from": "PEK", "to": "CTU"}).get_json()
    assert body["factor_set"] == "2025.1"
    [line] = body["items"]
    assert (line["kg"], line["kg_without_rf"], line["band"]) == (211.346, None, "short_haul")
    assert body["total_kg_without_rf"] is None and body["categories_without_rf"] is None
    assert client.get(f"/api/v1/estimates/{body['id']}").get_json() == body
