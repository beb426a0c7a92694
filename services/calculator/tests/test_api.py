"""The calculator's HTTP API against a migrated SQLite database (docs/contract.md §5)."""
from __future__ import annotations

import logging

import pytest

from diandian_common.testing import GuestClient
from calculator.wiring import unit_of_work, wiring

from .conftest import BASE_URL


def error(response):
    return response.get_json()["error"]


# --- scenes ---------------------------------------------------------------------------------

def test_create_scene(client, make_scene, sent):
    scene = make_scene()
    assert scene == {
        "id": scene["id"], "slug": "cdcn-forum-2021", "name": "首届中国数字碳中和高峰论坛",
        "name_en": "First China Digital Carbon Neutrality Forum", "type": "conference",
        "location": "成都 Chengdu", "province": None, "starts_on": "2021-09-07", "ends_on": None,
        "page_url": f"{BASE_URL}/s/cdcn-forum-2021",
        "qr_png_url": f"{BASE_URL}/api/v1/scenes/cdcn-forum-2021/qr.png",
        "poster_pdf_url": f"{BASE_URL}/api/v1/scenes/cdcn-forum-2021/poster.pdf",
        "form": ["flight", "rail", "car", "bus", "metro", "taxi", "hotel", "meal"],
        "archived": False,
    }
    assert client.get("/api/v1/scenes/cdcn-forum-2021").get_json() == scene
    assert sent == [("calculator.prerender_scene", {"v": 1, "slug": "cdcn-forum-2021"})]


def test_writes_need_the_operator_key(client):
    body = {"slug": "x1", "name": "X", "type": "hotel"}
    assert client.post("/api/v1/scenes", json=body).status_code == 401
    response = client.post("/api/v1/scenes", json=body, headers={"X-API-Key": "wrong"})
    assert (response.status_code, error(response)["code"]) == (403, "forbidden")
    assert client.patch("/api/v1/scenes/x1", json={"name": "Y"}).status_code == 401
    assert client.delete("/api/v1/scenes/x1").status_code == 401


def test_missing_key_is_reported_before_the_body_is_judged(client):
    assert client.post("/api/v1/scenes", json={"slug": "BAD"}).status_code == 401


def test_slugs_are_unique(client, make_scene, operator):
    make_scene("dujiangyan", type="scenic_spot", name="都江堰景区")
    response = client.post("/api/v1/scenes", headers=operator,
                           json={"slug": "dujiangyan", "name": "Other", "type": "hotel"})
    assert response.status_code == 409
    assert error(response)["code"] == "slug_taken"


@pytest.mark.parametrize("body, field", [
    ({"slug": "Bad Slug", "name": "n", "type": "hotel"}, "slug"),
    ({"slug": "ok-slug", "name": "n", "type": "castle"}, "type"),
    ({"slug": "ok-slug", "type": "hotel"}, "name"),
    ({"slug": "ok-slug", "name": "", "type": "hotel"}, "name"),
    ({"slug": "ok-slug", "name": "n" * 201, "type": "hotel"}, "name"),
    ({"slug": "ok-slug", "name": "n", "type": "hotel", "starts_on": "2021-13-01"}, "starts_on"),
    ({"slug": "ok-slug", "name": "n", "type": "hotel", "starts_on": "2021-09-08",
      "ends_on": "2021-09-07"}, "ends_on"),
    ({"slug": "ok-slug", "name": "n", "type": "hotel", "archived": True}, "archived"),
])
def test_scene_validation(client, operator, body, field):
    response = client.post("/api/v1/scenes", json=body, headers=operator)
    assert response.status_code == 422
    assert field in error(response)["fields"]


def test_list_filters_by_type_and_hides_archived(client, make_scene, operator):
    make_scene("forum", type="conference", name="Forum")
    make_scene("dujiangyan", type="scenic_spot", name="都江堰景区")
    make_scene("old-hotel", type="hotel", name="Old hotel")
    response = client.delete("/api/v1/scenes/old-hotel", headers=operator)
    assert (response.status_code, response.get_json()["archived"]) == (200, True)

    slugs = lambda query="": [s["slug"] for s in client.get(f"/api/v1/scenes{query}").get_json()["items"]]
    assert sorted(slugs()) == ["dujiangyan", "forum"]
    assert slugs("?type=scenic_spot") == ["dujiangyan"]
    assert slugs("?type=hotel") == []
    assert slugs("?type=hotel&include_archived=true") == ["old-hotel"]
    # archived scenes stay readable: their posters may still hang on a door
    assert client.get("/api/v1/scenes/old-hotel").get_json()["archived"] is True
    assert client.get("/api/v1/scenes?type=castle").status_code == 422


def test_update_keeps_the_slug(client, make_scene, operator, sent):
    make_scene()
    response = client.patch("/api/v1/scenes/cdcn-forum-2021", headers=operator,
                            json={"name": "新名字", "ends_on": "2021-09-08", "type": "hotel"})
    body = response.get_json()
    assert response.status_code == 200
    assert (body["name"], body["ends_on"], body["type"], body["slug"]) == (
        "新名字", "2021-09-08", "hotel", "cdcn-forum-2021")
    assert body["form"][0] == "hotel"
    assert sent[-1] == ("calculator.prerender_scene", {"v": 1, "slug": "cdcn-forum-2021"})

    response = client.patch("/api/v1/scenes/cdcn-forum-2021", headers=operator,
                            json={"slug": "renamed"})
    assert response.status_code == 422 and "slug" in error(response)["fields"]
    # the stored start is 2021-09-07, so an end before it is refused
    response = client.patch("/api/v1/scenes/cdcn-forum-2021", headers=operator,
                            json={"ends_on": "2021-09-01"})
    assert response.status_code == 422 and "ends_on" in error(response)["fields"]


def test_archive_and_restore(client, make_scene, operator):
    make_scene()
    client.delete("/api/v1/scenes/cdcn-forum-2021", headers=operator)
    response = client.patch("/api/v1/scenes/cdcn-forum-2021", headers=operator,
                            json={"archived": False})
    assert response.get_json()["archived"] is False
    assert [s["slug"] for s in client.get("/api/v1/scenes").get_json()["items"]] == ["cdcn-forum-2021"]


def test_unknown_scene_is_404(client, operator):
    for response in (client.get("/api/v1/scenes/nope"), client.get("/api/v1/scenes/nope/qr.png"),
                     client.get("/api/v1/scenes/nope/poster.pdf"),
                     client.get("/api/v1/scenes/nope/footprint"),
                     client.patch("/api/v1/scenes/nope", json={}, headers=operator),
                     client.delete("/api/v1/scenes/nope", headers=operator)):
        assert response.status_code == 404
        assert error(response)["code"] == "not_found"


def test_prerender_request_survives_a_broken_broker(client, make_scene, monkeypatch, caplog, offline_celery):
    monkeypatch.setattr(wiring, "celery", offline_celery)
    with caplog.at_level(logging.WARNING, logger="calculator.tasks"):
        make_scene()
    assert "will render on demand" in caplog.text


# --- estimates --------------------------------------------------------------------------------

def test_trip_estimate(client, make_scene):
    make_scene()
    response = GuestClient(client, "p-1").post("/api/v1/estimates", json={
        "kind": "trip", "scene": "cdcn-forum-2021",
        "activities": [
            # no airports: not known to touch the UK, DESNZ's non-UK row
            {"type": "flight", "distance_km": 1000, "round_trip": True},  # 1000×1.08×0.10916×2
            {"type": "hotel", "nights": 2},                               # 2 × 53.5
            {"type": "meal", "count": 6},                                 # 6 × 7.04 / 3
        ]})
    assert response.status_code == 201
    body = response.get_json()
    assert body["kind"] == "trip" and body["scene"] == "cdcn-forum-2021"
    assert body["factor_set"] == "2025.2"
    assert [item["kg"] for item in body["items"]] == [235.786, 107.0, 14.08]
    assert body["total_kg"] == 356.866
    assert body["categories"] == {"home_energy": 0.0, "transport": 0.0, "flights": 235.786,
                                  "food": 14.08, "accommodation": 107.0}
    # 1000 × 1.08 × 0.06449 × 2 = 139.2984 without radiative forcing; only flights differ
    assert body["items"][0]["kg_without_rf"] == 139.298 and "kg_without_rf" not in body["items"][1]
    assert body["total_kg_without_rf"] == 260.378
    assert body["categories_without_rf"] == {**body["categories"], "flights": 139.298}
    assert set(body["notes"]["radiative_forcing"]) == {"en", "zh"}
    assert body["benchmark"] is None
    flight = body["items"][0]
    assert flight["factor"]["value"] == 0.10916 and flight["factor"]["year"] == 2025
    assert flight["factor"]["unit"] == "kg CO2e per passenger-km"
    assert (flight["factor"]["gases"], flight["factor"]["radiative_forcing"]) == ("CO2e", True)
    assert "DESNZ" in flight["factor"]["source"] and "non-UK" in flight["factor"]["source"]
    assert (flight["distance_km"], flight["band"], flight["round_trip"]) == (1000.0, "international", True)
    assert (flight["party_size"], flight["share"]) == (1, 1.0)
    assert "1.08 distance uplift" in flight["calculation"]

    stored = client.get(f"/api/v1/estimates/{body['id']}")
    assert stored.status_code == 200 and stored.get_json() == body


def test_life_estimate_has_categories_and_a_benchmark(client):
    response = client.post("/api/v1/estimates", json={"kind": "life", "activities": [
        {"type": "electricity", "kwh": 200, "period": "month"},   # 1273.44
        {"type": "natural_gas", "m3": 20, "period": "month"},     # 20 × 2.1622 × 12 = 518.928
        {"type": "metro", "distance_km": 40, "period": "week"},   # 40 × 0.0278 × 52 = 57.824
        {"type": "flight", "from": "CTU", "to": "PEK", "round_trip": True},
        {"type": "meal", "count": 3, "diet": "vegetarian", "period": "day"},  # 4.16 × 365
    ]})
    body = response.get_json()
    assert response.status_code == 201
    categories = body["categories"]
    assert categories["home_energy"] == 1792.368
    assert categories["transport"] == 57.824
    assert categories["food"] == 1518.4
    assert categories["flights"] == body["items"][3]["kg"] > 0
    assert body["total_kg"] == pytest.approx(sum(categories.values()), abs=1e-9)
    benchmark = body["benchmark"]
    assert benchmark["kg"] == 8400.0 and benchmark["gases"] == "CO2"
    # like for like: the CO2-only lines (grid electricity, gas) against territorial CO2
    assert benchmark["compared_kg"] == 1792.368
    assert benchmark["not_compared_kg"] == pytest.approx(body["total_kg"] - 1792.368, abs=1e-6)
    assert benchmark["ratio"] == round(1792.368 / 8400, 3)
    assert benchmark["factor"]["year"] == 2023 and benchmark["factor"]["source"]


def test_estimate_against_an_unknown_scene_is_422_on_scene(client):
    response = client.post("/api/v1/estimates", json={
        "kind": "trip", "scene": "nowhere", "activities": [{"type": "bus", "distance_km": 3}]})
    assert response.status_code == 422
    assert error(response)["fields"] == {"scene": ["unknown scene 'nowhere'"]}


@pytest.mark.parametrize("activity, path", [
    ({"type": "flight", "from": "CTU", "to": "XQZ"}, ["to"]),
    ({"type": "flight", "from": "CTU"}, ["to"]),
    ({"type": "flight"}, ["from"]),
    ({"type": "flight", "from": "CTU", "to": "ctu"}, ["to"]),
    ({"type": "flight", "from": "CTU", "to": "PEK", "distance_km": 10}, ["distance_km"]),
    ({"type": "flight", "distance_km": 50_001}, ["distance_km"]),
    ({"type": "flight", "distance_km": 900, "passengers": 501}, ["passengers"]),
    ({"type": "flight", "distance_km": 900, "passengers": 1.5}, ["passengers"]),
    ({"type": "flight", "distance_km": 900, "cabin": "cargo"}, ["cabin"]),
    ({"type": "rail", "distance_km": -1}, ["distance_km"]),
    ({"type": "rail"}, ["distance_km"]),
    ({"type": "rail", "distance_km": 5, "class": "first"}, ["class"]),
    ({"type": "car", "distance_km": 5, "fuel": "coal"}, ["fuel"]),
    ({"type": "hotel", "nights": 366}, ["nights"]),
    ({"type": "hotel", "nights": 2, "country": "ZZ"}, ["country"]),
    ({"type": "hotel", "nights": 2, "rooms": 0}, ["rooms"]),
    ({"type": "electricity", "kwh": 10_000_001}, ["kwh"]),
    ({"type": "electricity", "kwh": "NaN"}, ["kwh"]),
    ({"type": "natural_gas", "m3": "lots"}, ["m3"]),
    ({"type": "meal", "count": 0}, ["count"]),
    ({"type": "meal", "count": 2, "diet": "carnivore"}, ["diet"]),
    ({"type": "meal", "count": 2, "kwh": 5}, ["kwh"]),
    ({"type": "teleport", "distance_km": 5}, ["type"]),
    ({"distance_km": 5}, ["type"]),
    ({"type": "bus", "distance_km": 5, "colour": "red"}, ["colour"]),
    ({"type": "bus", "distance_km": 5, "period": "week"}, ["period"]),  # trips have no period
])
def test_invalid_activities_name_the_field(client, activity, path):
    response = client.post("/api/v1/estimates", json={
        "kind": "trip", "activities": [{"type": "bus", "distance_km": 1}, activity]})
    assert response.status_code == 422, response.get_json()
    fields = error(response)["fields"]["activities"]
    assert list(fields) == ["1"]
    assert path[0] in fields["1"]


@pytest.mark.parametrize("body, field", [
    ({"kind": "trip", "activities": []}, "activities"),
    ({"kind": "trip", "activities": [{"type": "bus", "distance_km": 1}] * 101}, "activities"),
    ({"kind": "year", "activities": [{"type": "bus", "distance_km": 1}]}, "kind"),
    ({"activities": [{"type": "bus", "distance_km": 1}]}, "kind"),
    ({"kind": "trip"}, "activities"),
    ({"kind": "trip", "activities": {"type": "bus"}}, "activities"),
    ({"kind": "trip", "participant_id": "", "activities": [{"type": "bus", "distance_km": 1}]},
     "participant_id"),
])
def test_invalid_estimate_requests(client, body, field):
    response = client.post("/api/v1/estimates", json=body)
    assert response.status_code == 422
    assert field in error(response)["fields"]


def test_an_estimate_is_the_guests_the_gateway_vouches_for(client, operator):
    trip = {"kind": "trip", "activities": [{"type": "bus", "distance_km": 1}]}
    own = GuestClient(client, "p_alice").post("/api/v1/estimates", json=trip)
    assert own.status_code == 201 and own.get_json()["participant_id"] == "p_alice"
    assert client.post("/api/v1/estimates", json=trip).get_json()["participant_id"] is None  # anonymous
    # naming someone (to replace their estimate in an event's footprint) is refused ...
    for guest in (client, GuestClient(client, "p_mallory")):
        refused = guest.post("/api/v1/estimates", json={**trip, "participant_id": "p_alice"})
        assert refused.status_code == 422
        assert "assigned by the platform" in error(refused)["fields"]["participant_id"][0]
    # ... except for an operator key with the guests scope, in its own namespace
    kiosk = client.post("/api/v1/estimates", json={**trip, "participant_id": "p_alice"}, headers=operator)
    assert kiosk.status_code == 201 and kiosk.get_json()["participant_id"] == "env~p_alice"


def test_unreadable_json_is_400(client):
    response = client.post("/api/v1/estimates", data="{not json",
                           headers={"Content-Type": "application/json"})
    assert (response.status_code, error(response)["code"]) == (400, "invalid_json")


def test_unknown_estimate_is_404(client):
    assert client.get("/api/v1/estimates/not-an-id").status_code == 404


# --- event footprint ---------------------------------------------------------------------------

def test_scene_footprint(client, make_scene):
    make_scene()

    def estimate(participant=None, kind="trip", **activity):
        body = {"kind": kind, "scene": "cdcn-forum-2021", "activities": [activity]}
        guest = GuestClient(client, participant) if participant else client
        assert guest.post("/api/v1/estimates", json=body).status_code == 201

    estimate("alice", type="bus", distance_km=10)             # 1.039, replaced below
    estimate("alice", type="rail", distance_km=300)           # 300 × 19.5 ÷ (576 × 0.95) × 0.5306
    estimate("bob", type="hotel", nights=1)                   # 53.5
    estimate(type="meal", count=3)                            # 7.04, anonymous
    estimate("carol", kind="life", type="electricity", kwh=1000)  # life: not the event's
    body = client.get("/api/v1/scenes/cdcn-forum-2021/footprint").get_json()
    categories = {"home_energy": 0.0, "transport": 5.673, "flights": 0.0, "food": 7.04,
                  "accommodation": 53.5}
    assert body == {"scene": "cdcn-forum-2021", "participants": 3, "estimates": 4,
                    "total_kg": 66.213, "average_kg": 22.071, "categories": categories,
                    "total_kg_without_rf": 66.213, "categories_without_rf": categories,
                    "estimates_without_rf_unknown": 0}


# --- factors ------------------------------------------------------------------------------

def test_factor_listing(client):
    body = client.get("/api/v1/factors").get_json()
    assert (body["version"], body["current"], body["versions"]) == ("2025.2", True, ["2025.2"])
    by_key = {item["key"]: item for item in body["items"]}
    assert by_key["flight.long_haul.first"]["value"] == 0.46814
    assert by_key["hotel.CN"]["table"] == "Hotel stay › China › Room per night"
    for item in body["items"]:
        assert item["publisher"] and item["document"] and item["table"] and item["year"]
    assert client.get("/api/v1/factors?version=2025.2").get_json()["items"] == body["items"]
    older = client.get("/api/v1/factors?version=2025.1").get_json()
    assert (older["version"], older["current"]) == ("2025.1", False)
    assert by_key["electricity"]["gases"] == "CO2" and by_key["electricity.CN-SC"]["value"] == 0.1404
    assert by_key["flight.international.economy.without_rf"]["value"] == 0.06449
    assert client.get("/api/v1/factors?version=1999.1").status_code == 404
    assert client.get("/api/v1/factors?version=latest").status_code == 422


def test_estimates_keep_the_factor_set_they_used(client):
    """A stored estimate is shown as computed, whatever the current factor set becomes."""
    from calculator.models import FactorRecord
    from sqlalchemy import update

    first = client.post("/api/v1/estimates", json={
        "kind": "trip", "activities": [{"type": "bus", "distance_km": 10}]}).get_json()
    with unit_of_work() as uow:
        uow.session.execute(update(FactorRecord).where(FactorRecord.key == "bus").values(value="9"))
    again = client.get(f"/api/v1/estimates/{first['id']}").get_json()
    assert again == first and again["items"][0]["factor"]["value"] == 0.10385


def test_openapi_document_lists_the_spec_paths(client):
    spec = client.get("/openapi.json").get_json()
    for path in ("/api/v1/scenes", "/api/v1/scenes/{slug}", "/api/v1/scenes/{slug}/qr.png",
                 "/api/v1/estimates", "/api/v1/estimates/{estimate_id}", "/api/v1/factors",
                 "/api/v1/scenes/{slug}/footprint", "/api/v1/scenes/{slug}/poster.pdf"):
        assert path in spec["paths"]
    scene = spec["components"]["schemas"]["Scene"]["properties"]
    assert {"id", "slug", "name", "type", "location", "starts_on", "ends_on", "page_url",
            "qr_png_url"} <= set(scene)
    estimate = spec["components"]["schemas"]["Estimate"]["properties"]
    assert {"id", "kind", "scene", "total_kg", "items", "factor_set"} <= set(estimate)
    # An activity is one of its types' variants (tests/test_openapi_document.py checks each).
    schemas = spec["components"]["schemas"]
    assert schemas["Activity"]["discriminator"]["propertyName"] == "type"
    types = {"flight", "rail", "metro", "bus", "taxi", "car", "hotel", "electricity", "natural_gas", "meal"}
    activity = {name for schema in schemas.values()
                if set(schema.get("properties", {}).get("type", {}).get("enum", ["?"])) <= types
                for name in schema["properties"]}
    assert {"type", "from", "to", "distance_km", "cabin", "round_trip", "passengers", "class",
            "fuel", "nights", "rooms", "country", "kwh", "m3", "count", "diet"} <= activity
    assert spec["paths"]["/api/v1/scenes"]["post"]["security"] == [{"ApiKeyAuth": []}]


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000,
                                  '{"kind": "trip", "activities": ' + "[" * 50_000 + "]" * 50_000 + "}"])
def test_absurdly_nested_json_is_400(client, body):
    response = client.post("/api/v1/estimates", data=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, error(response)["code"]) == (400, "invalid_json")


@pytest.mark.parametrize("body", [
    '{"kind": "trip", "activities": [{"type": "car", "distance_km": %s}]}' % ("1" * 5000),
    '{"kind": "trip", "activities": [{"type": "car", "distance_km": 10, "note": "\\udc00"}]}',
])
def test_hostile_json_is_a_400_not_a_500(client, body):
    response = client.post("/api/v1/estimates", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_json"


def test_a_scene_name_can_change_but_not_be_removed(client, operator):
    created = client.post("/api/v1/scenes", headers=operator,
                          json={"slug": "named-forum", "name": "Forum", "type": "conference"})
    assert created.status_code == 201
    response = client.patch("/api/v1/scenes/named-forum", headers=operator, json={"name": None})
    assert response.status_code == 422 and "name" in response.get_json()["error"]["fields"]
    renamed = client.patch("/api/v1/scenes/named-forum", headers=operator, json={"name": "Forum 2026", "name_en": None})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Forum 2026"
