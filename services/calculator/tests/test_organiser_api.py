"""A scene's province and its organiser's inputs over HTTP (docs/contract.md §5)."""
from __future__ import annotations

import pytest

INPUTS = "/api/v1/scenes/cdcn-forum-2021/organiser-inputs"
FULL = {"attendees": 250, "venue_kwh": 12000, "catering": {"meat_meals": 300, "vegetarian_meals": 150}}


def test_a_scene_takes_a_province_and_gives_it_back(client, make_scene, operator):
    assert make_scene()["province"] is None
    assert make_scene("sichuan-venue", province="CN-SC")["province"] == "CN-SC"
    changed = client.patch("/api/v1/scenes/cdcn-forum-2021", json={"province": "CN-BJ"}, headers=operator)
    assert changed.status_code == 200 and changed.get_json()["province"] == "CN-BJ"
    cleared = client.patch("/api/v1/scenes/cdcn-forum-2021", json={"province": None}, headers=operator)
    assert cleared.get_json()["province"] is None
    assert client.get("/api/v1/scenes/sichuan-venue").get_json()["province"] == "CN-SC"


@pytest.mark.parametrize("province", ["SC", "cn-sc", "CN-ZZ", "CN-51", "", 51, ["CN-SC"], "CN-SC\n"])
def test_a_province_that_is_not_iso_3166_2_cn_is_422(client, make_scene, operator, province):
    make_scene()
    response = client.patch("/api/v1/scenes/cdcn-forum-2021", json={"province": province}, headers=operator)
    assert response.status_code == 422
    assert "province" in response.get_json()["error"]["fields"]


def test_before_any_entry_the_inputs_are_null_with_no_lines(client, make_scene):
    make_scene()
    body = client.get(INPUTS).get_json()
    assert body["attendees"] is None and body["venue_kwh"] is None and body["updated_at"] is None
    assert body["catering"] == {"meat_meals": None, "vegetarian_meals": None}
    assert (body["lines"], body["total_kg"], body["unpriced"]) == ([], 0.0, [])
    assert body["factor_set"] == client.get("/api/v1/factors").get_json()["version"]


def test_the_organiser_enters_inputs_and_gets_them_priced(client, make_scene, operator):
    make_scene()
    response = client.put(INPUTS, json=FULL, headers=operator)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["attendees"], body["venue_kwh"]) == (250, 12000.0)
    assert body["catering"] == {"meat_meals": 300, "vegetarian_meals": 150}
    assert [line["type"] for line in body["lines"]] == ["electricity", "meal", "meal"]
    electricity = body["lines"][0]
    assert electricity["kg"] == pytest.approx(12000 * electricity["factor"]["value"], abs=0.001)
    assert electricity["factor"]["key"].startswith("electricity") and electricity["calculation"]
    assert body["total_kg"] == pytest.approx(sum(line["kg"] for line in body["lines"]), abs=1e-9)
    assert body["categories"]["venue_energy"] == electricity["kg"]
    assert body["updated_at"] is not None
    assert client.get(INPUTS).get_json() == body  # read back exactly as answered


def test_a_put_replaces_everything_entered(client, make_scene, operator):
    make_scene()
    client.put(INPUTS, json=FULL, headers=operator)
    body = client.put(INPUTS, json={"attendees": 80}, headers=operator).get_json()
    assert (body["attendees"], body["venue_kwh"], body["lines"]) == (80, None, [])
    assert body["catering"] == {"meat_meals": None, "vegetarian_meals": None}


def test_fractional_quantities_are_kept_to_the_thousandth(client, make_scene, operator):
    make_scene()
    body = client.put(INPUTS, json={"venue_kwh": 0.0015}, headers=operator).get_json()
    assert body["venue_kwh"] == 0.002  # half-up to whole Wh


def test_waste_is_priced_when_the_factor_set_has_its_factor_else_listed_unpriced(client, make_scene,
                                                                                 operator):
    make_scene()
    waste = {"waste_kg": 800, "waste_treatment": "landfill"}
    body = client.put(INPUTS, json=waste, headers=operator).get_json()
    assert body["waste_kg"] == 800.0 and body["waste_treatment"] == "landfill"
    factors = {f["key"] for f in client.get("/api/v1/factors").get_json()["items"]}
    if "waste.landfill" in factors:
        assert [line["type"] for line in body["lines"]] == ["waste"] and body["unpriced"] == []
    else:
        assert body["lines"] == [] and body["unpriced"][0]["input"] == "waste_kg"


def test_writing_the_inputs_needs_an_operator(client, make_scene):
    make_scene()
    assert client.put(INPUTS, json=FULL).status_code == 401
    assert client.put(INPUTS, json=FULL, headers={"X-API-Key": "wrong"}).status_code == 403


def test_an_unknown_scene_is_404(client, operator):
    assert client.get("/api/v1/scenes/no-such-scene/organiser-inputs").status_code == 404
    response = client.put("/api/v1/scenes/no-such-scene/organiser-inputs", json=FULL, headers=operator)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("body, field", [
    ({"attendees": -1}, "attendees"),
    ({"attendees": 2.5}, "attendees"),
    ({"attendees": "250"}, "attendees"),
    ({"attendees": 10**12}, "attendees"),
    ({"venue_kwh": -0.1}, "venue_kwh"),
    ({"venue_kwh": 1e300}, "venue_kwh"),
    ({"venue_kwh": "NaN"}, "venue_kwh"),
    ({"venue_kwh": "Infinity"}, "venue_kwh"),
    ({"venue_kwh": True}, "venue_kwh"),
    ({"catering": {"meat_meals": -3}}, "catering"),
    ({"catering": {"fish_meals": 3}}, "catering"),
    ({"catering": [1, 2]}, "catering"),
    ({"waste_kg": 10}, "waste_treatment"),
    ({"waste_treatment": "landfill"}, "waste_treatment"),
    ({"waste_kg": 10, "waste_treatment": "compost"}, "waste_treatment"),
    ({"venue_kwh": 10, "hacked": 1}, "hacked"),
])
def test_bad_or_hostile_inputs_are_422_on_their_field(client, make_scene, operator, body, field):
    make_scene()
    response = client.put(INPUTS, json=body, headers=operator)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    assert client.get(INPUTS).get_json()["updated_at"] is None  # nothing was stored


@pytest.mark.parametrize("payload", ["[]", "null", "\"text\"", "{"])
def test_a_body_that_is_not_an_object_is_a_4xx_json_error(client, make_scene, operator, payload):
    make_scene()
    response = client.put(INPUTS, data=payload, content_type="application/json", headers=operator)
    assert 400 <= response.status_code < 500 and "error" in response.get_json()


def test_the_venues_province_chooses_its_grid(client, make_scene, operator):
    make_scene()
    national = client.put(INPUTS, json={"venue_kwh": 1000}, headers=operator).get_json()["lines"][0]
    assert national["factor"]["key"] == "electricity"
    client.patch("/api/v1/scenes/cdcn-forum-2021", json={"province": "CN-SC"}, headers=operator)
    body = client.get(INPUTS).get_json()
    (sichuan,) = body["lines"]
    factors = {f["key"]: f for f in client.get("/api/v1/factors").get_json()["items"]}
    expected = factors.get("electricity.CN-SC", factors["electricity"])
    assert body["province"] == "CN-SC" and sichuan["factor"]["key"] == expected["key"]
    assert sichuan["kg"] == pytest.approx(1000 * expected["value"], abs=0.001)
