"""The calculator's refusals in the language the client asks for (diandian_common.i18n):
each request of the battery is answered in Chinese for ``Accept-Language: zh-CN``, with every
message in ``error.fields`` translated, and in English for ``en``. A new refusal of a new
route belongs in the battery."""
from __future__ import annotations

import pytest

from diandian_common.testing import GuestClient, assert_errors_in_language

SCENE = "cdcn-forum-2021"
KEY = {"X-API-Key": "test-operator-key"}
WRONG_KEY = {"X-API-Key": "wrong"}
BUS = {"type": "bus", "distance_km": 1}

BAD_ACTIVITIES = [
    {"type": "flight", "from": "CTU", "to": "XQZ"},
    {"type": "flight", "from": "CTU"},
    {"type": "flight"},
    {"type": "flight", "from": "CT", "to": "PEK"},
    {"type": "flight", "from": "CTU", "to": "ctu"},
    {"type": "flight", "from": "CTU", "to": "PEK", "distance_km": 10},
    {"type": "flight", "distance_km": 50_001},
    {"type": "flight", "distance_km": 900, "passengers": 501},
    {"type": "flight", "distance_km": 900, "passengers": 1.5},
    {"type": "flight", "distance_km": 900, "passengers": 2, "party_size": 2},
    {"type": "flight", "distance_km": 900, "cabin": "cargo"},
    {"type": "flight", "distance_km": 900, "round_trip": "maybe"},
    {"type": "rail", "distance_km": -1},
    {"type": "rail"},
    {"type": "rail", "distance_km": 5, "class": "first"},
    {"type": "metro", "distance_km": "far"},
    {"type": "taxi", "distance_km": None},
    {"type": "car", "distance_km": 5, "fuel": "coal"},
    {"type": "car", "distance_km": 5, "province": "CN-XX"},
    {"type": "hotel", "nights": 366},
    {"type": "hotel", "nights": 2, "country": "ZZ"},
    {"type": "hotel", "nights": 2, "country": "ZZZ"},
    {"type": "hotel", "nights": 2, "rooms": 0},
    {"type": "electricity", "kwh": 10_000_001},
    {"type": "electricity", "kwh": "NaN"},
    {"type": "electricity", "kwh": 10, "province": "Sichuan"},
    {"type": "natural_gas", "m3": "lots"},
    {"type": "meal", "count": 0},
    {"type": "meal", "count": 2, "diet": "carnivore"},
    {"type": "meal", "count": 2, "kwh": 5},
    {"type": "teleport", "distance_km": 5},
    {"distance_km": 5},
    {"type": 7, "distance_km": 5},
    {"type": "bus", "distance_km": 5, "colour": "red"},
    {"type": "bus", "distance_km": 5, "period": "week"},
    "a bus",
]

REFUSED = [
    *[("POST", "/api/v1/estimates", {"json": {"kind": "trip", "activities": [BUS, activity]}})
      for activity in BAD_ACTIVITIES],
    ("POST", "/api/v1/estimates", {"json": {"kind": "life", "activities": [
        {"type": "electricity", "kwh": 10, "period": "fortnight"}]}}),
    ("POST", "/api/v1/estimates", {"json": {"kind": "trip", "activities": []}}),
    ("POST", "/api/v1/estimates", {"json": {"kind": "trip", "activities": [BUS] * 101}}),
    ("POST", "/api/v1/estimates", {"json": {"kind": "year", "activities": [BUS]}}),
    ("POST", "/api/v1/estimates", {"json": {"activities": [BUS]}}),
    ("POST", "/api/v1/estimates", {"json": {"kind": "trip"}}),
    ("POST", "/api/v1/estimates", {"json": {"kind": "trip", "activities": {"type": "bus"}}}),
    ("POST", "/api/v1/estimates", {"json": {"kind": "trip", "participant_id": "", "activities": [BUS]}}),
    ("POST", "/api/v1/estimates", {"json": {"kind": "trip", "participant_id": "p_x", "activities": [BUS]}}),
    ("POST", "/api/v1/estimates", {"json": {"kind": "trip", "scene": "nowhere", "activities": [BUS]}}),
    ("POST", "/api/v1/estimates", {"json": {"kind": "trip", "scene": "s" * 65, "activities": [BUS]}}),
    ("POST", "/api/v1/estimates", {"json": {"kind": "trip", "activities": [BUS], "extra": 1}}),
    ("POST", "/api/v1/estimates", {"json": []}),
    ("POST", "/api/v1/estimates", {"data": "{not json", "content_type": "application/json"}),
    ("POST", "/api/v1/estimates", {"data": '{"kind": ' + "1" * 5000 + "}",
                                   "content_type": "application/json"}),
    ("POST", "/api/v1/estimates", {"data": '{"kind": NaN}', "content_type": "application/json"}),
    ("POST", "/api/v1/estimates", {"data": "[" * 100_000, "content_type": "application/json"}),
    ("POST", "/api/v1/estimates", {"data": "x" * (1024 * 1024 + 1), "content_type": "application/json"}),
    ("GET", "/api/v1/estimates/not-an-id", {}),
    ("DELETE", "/api/v1/estimates", {}),
    ("GET", "/api/v1/nothing-here", {}),
    # scenes
    ("POST", "/api/v1/scenes", {"json": {"slug": "x1", "name": "X", "type": "hotel"}}),
    ("POST", "/api/v1/scenes", {"json": {"slug": "x1", "name": "X", "type": "hotel"}, "headers": WRONG_KEY}),
    ("POST", "/api/v1/scenes", {"json": {"slug": SCENE, "name": "Other", "type": "hotel"}, "headers": KEY}),
    ("POST", "/api/v1/scenes", {"json": {"slug": "Bad Slug", "name": "n", "type": "castle"}, "headers": KEY}),
    ("POST", "/api/v1/scenes", {"json": {"slug": "s", "name": "", "type": "hotel"}, "headers": KEY}),
    ("POST", "/api/v1/scenes", {"json": {"slug": "ok-slug", "name": "n" * 201, "type": "hotel",
                                         "starts_on": "2021-13-01", "archived": True}, "headers": KEY}),
    ("POST", "/api/v1/scenes", {"json": {"slug": "ok-slug", "name": "n", "type": "hotel",
                                         "starts_on": "2021-09-08", "ends_on": "2021-09-07"},
                                "headers": KEY}),
    ("PATCH", f"/api/v1/scenes/{SCENE}", {"json": {"slug": "renamed"}, "headers": KEY}),
    ("PATCH", f"/api/v1/scenes/{SCENE}", {"json": {"ends_on": "2021-09-01"}, "headers": KEY}),
    ("PATCH", f"/api/v1/scenes/{SCENE}", {"json": {"province": "CN-XX"}, "headers": KEY}),
    ("PATCH", "/api/v1/scenes/no-such-scene", {"json": {"name": "n"}, "headers": KEY}),
    ("GET", "/api/v1/scenes/no-such-scene", {}),
    ("GET", "/api/v1/scenes/no-such-scene/footprint", {}),
    ("GET", "/api/v1/scenes/no-such-scene/qr.png", {}),
    ("GET", "/api/v1/scenes?type=castle", {}),
    ("GET", "/api/v1/scenes?include_archived=perhaps", {}),
    ("DELETE", f"/api/v1/scenes/{SCENE}", {}),
    # organiser inputs
    ("PUT", f"/api/v1/scenes/{SCENE}/organiser-inputs", {"json": {"attendees": 1}}),
    ("PUT", "/api/v1/scenes/no-such-scene/organiser-inputs", {"json": {"attendees": 1}, "headers": KEY}),
    *[("PUT", f"/api/v1/scenes/{SCENE}/organiser-inputs", {"json": body, "headers": KEY}) for body in [
        {"attendees": -1}, {"attendees": 2.5}, {"attendees": "250"}, {"attendees": 10**12},
        {"venue_kwh": 1e300}, {"venue_kwh": "Infinity"}, {"venue_kwh": True},
        {"catering": {"meat_meals": -3}}, {"catering": {"fish_meals": 3}}, {"catering": [1, 2]},
        {"waste_kg": 10}, {"waste_treatment": "landfill"}, {"waste_kg": 10, "waste_treatment": "compost"},
        {"venue_kwh": 10, "hacked": 1}]],
    # factors
    ("GET", "/api/v1/factors?version=1999.1", {}),
    ("GET", "/api/v1/factors?version=latest", {}),
    # airport search
    ("GET", "/api/v1/airports", {}),
    ("GET", "/api/v1/airports?q=%20%20", {}),
    ("GET", "/api/v1/airports?q=che%01ng", {}),
    ("GET", "/api/v1/airports?q=" + "x" * 500, {}),
    ("GET", "/api/v1/airports?q=chengdu&limit=0", {}),
    ("GET", "/api/v1/airports?q=chengdu&limit=many", {}),
]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_refusal_speaks_the_asked_language(client, make_scene, language):
    make_scene(SCENE)
    assert_errors_in_language(client, REFUSED, language)


def test_a_guest_naming_another_participant_is_refused_in_chinese(client):
    guest = GuestClient(client, "p_mallory")
    assert_errors_in_language(guest, [("POST", "/api/v1/estimates", {"json": {
        "kind": "trip", "participant_id": "p_alice", "activities": [BUS]}})], "zh")


def test_the_unknown_airport_names_its_code_in_chinese(client):
    response = client.post("/api/v1/estimates", headers={"Accept-Language": "zh-CN"}, json={
        "kind": "trip", "activities": [{"type": "flight", "from": "CTU", "to": "XQZ"}]})
    assert response.status_code == 422
    assert response.headers["Content-Language"] == "zh"
    assert response.get_json()["error"] == {
        "code": "validation_error", "message": "部分字段无效",
        "fields": {"activities": {"0": {"to": ["未知的 IATA 机场代码 'XQZ'"]}}}}
