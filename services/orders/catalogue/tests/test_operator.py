"""Operators' endpoints and ``flask`` commands: projects, issuances, prices, order lists."""
from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import update

from diandian_common.testing import GuestClient
from diandian_common.uow import UnitOfWork
from orders.cli import DEMO_LOCATIONS_ZH
from orders.models import Project
from orders.ordering import service as ordering

NEW_PROJECT = {"code": "CDCER-DJY-FOREST", "name": "都江堰森林碳汇", "name_en": "Dujiangyan Forest Sink",
               "type": "forestry_carbon_sink", "location": "Dujiangyan, Chengdu", "vintage": 2024,
               "price_fen_per_tonne": 8000}


def create_project(client, operator, **changes):
    response = client.post("/api/v1/projects", json={**NEW_PROJECT, **changes}, headers=operator)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def buy(client, project_id, kg, participant="p-1", scene=None):
    body = {"project_id": project_id, "quantity_kg": kg, "participant": {"display_name": "Guest"}}
    return GuestClient(client, participant).post("/api/v1/orders", json=body,
                                                 headers={"Idempotency-Key": uuid.uuid4().hex})


@pytest.mark.parametrize("method, path", [
    ("post", "/api/v1/projects"), ("patch", "/api/v1/projects/prj_x"),
    ("post", "/api/v1/projects/prj_x/issuances"), ("get", "/api/v1/orders"),
])
def test_operator_endpoints_need_the_key(client, operator, method, path):
    missing = getattr(client, method)(path, json={})
    assert missing.status_code == 401 and missing.get_json()["error"]["code"] == "unauthorized"
    wrong = getattr(client, method)(path, json={}, headers={"X-API-Key": "not-the-key"})
    assert wrong.status_code == 403 and wrong.get_json()["error"]["code"] == "forbidden"


def test_create_issue_and_buy(client, operator):
    project = create_project(client, operator)
    assert project["registry"] == "CDCER"  # the default
    assert (project["issued_kg"], project["available_kg"]) == (0, 0)
    assert buy(client, project["id"], 1).status_code == 409  # nothing issued yet

    issued = client.post(f"/api/v1/projects/{project['id']}/issuances", json={"first": 1, "last": 500},
                         headers=operator)
    assert issued.status_code == 201
    body = issued.get_json()
    assert (body["first"], body["last"], body["quantity_kg"]) == (1, 500, 500)
    assert body["project"]["available_kg"] == 500
    more = client.post(f"/api/v1/projects/{project['id']}/issuances", json={"first": 1001, "last": 1100},
                       headers=operator).get_json()
    assert more["project"]["issued_kg"] == 600

    order = buy(client, project["id"], "12.2").get_json()
    assert order["quantity_kg"] == 13 and order["amount_fen"] == -(-13 * 8000 // 1000)
    listed = {p["code"]: p for p in client.get("/api/v1/projects").get_json()["items"]}
    assert listed["CDCER-DJY-FOREST"]["available_kg"] == 600 - 13
    assert client.get(f"/api/v1/projects/{project['id']}").get_json()["reserved_kg"] == 13


def test_project_codes_are_unique(client, operator):
    create_project(client, operator)
    again = client.post("/api/v1/projects", json=NEW_PROJECT, headers=operator)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "project_code_taken"


@pytest.mark.parametrize("changes, field", [
    ({"code": "lower-case"}, "code"),
    ({"code": ""}, "code"),
    ({"name": "   "}, "name"),
    ({"name_en": "x" * 201}, "name_en"),
    ({"type": "Forestry Sink"}, "type"),
    ({"vintage": 1800}, "vintage"),
    ({"vintage": "2024"}, "vintage"),
    ({"price_fen_per_tonne": 0}, "price_fen_per_tonne"),
    ({"price_fen_per_tonne": 12.5}, "price_fen_per_tonne"),
    ({"price_fen_per_tonne": 10**12}, "price_fen_per_tonne"),
    ({"registry": ""}, "registry"),
    ({"unexpected": 1}, "unexpected"),
])
def test_invalid_projects_name_the_field(client, operator, changes, field):
    response = client.post("/api/v1/projects", json={**NEW_PROJECT, **changes}, headers=operator)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]


def test_overlapping_issuances_are_refused(client, operator):
    project = create_project(client, operator)
    url = f"/api/v1/projects/{project['id']}/issuances"
    assert client.post(url, json={"first": 100, "last": 199}, headers=operator).status_code == 201
    for first, last in ((150, 250), (1, 100), (199, 199), (50, 300)):
        response = client.post(url, json={"first": first, "last": last}, headers=operator)
        assert response.status_code == 409 and response.get_json()["error"]["code"] == "serials_overlap"
    assert client.post(url, json={"first": 200, "last": 299}, headers=operator).status_code == 201
    # Serials belong to a project: another project may use the same numbers.
    other = create_project(client, operator, code="CDCER-OTHER")
    assert client.post(f"/api/v1/projects/{other['id']}/issuances", json={"first": 100, "last": 199},
                       headers=operator).status_code == 201
    assert client.get(f"/api/v1/projects/{project['id']}").get_json()["issued_kg"] == 200


@pytest.mark.parametrize("body, field", [
    ({"first": 0, "last": 10}, "first"),
    ({"first": 10, "last": 9}, "last"),
    ({"first": 1, "last": 1_000_000_000}, "last"),
    ({"first": "1", "last": 10}, "first"),
    ({"last": 10}, "first"),
])
def test_invalid_issuances_name_the_field(client, operator, body, field):
    project = create_project(client, operator)
    response = client.post(f"/api/v1/projects/{project['id']}/issuances", json=body, headers=operator)
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]


def test_unknown_projects_are_404(client):
    response = client.get("/api/v1/projects/prj_nope")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_issuance_for_an_unknown_project_is_404(client, operator):
    response = client.post("/api/v1/projects/prj_nope/issuances", json={"first": 1, "last": 2}, headers=operator)
    assert response.status_code == 404


def test_a_new_price_applies_to_new_orders_only(client, operator, database):
    project = client.get("/api/v1/projects").get_json()["items"][0]
    before = buy(client, project["id"], 100).get_json()
    changed = client.patch(f"/api/v1/projects/{project['id']}", json={"price_fen_per_tonne": 9000,
                                                                     "location": "Longquanyi, Chengdu"},
                           headers=operator)
    assert changed.status_code == 200
    assert changed.get_json()["price_fen_per_tonne"] == 9000
    assert changed.get_json()["location"] == "Longquanyi, Chengdu"
    after = buy(client, project["id"], 100).get_json()
    assert after["amount_fen"] == 900
    assert before["amount_fen"] == 100 * project["price_fen_per_tonne"] // 1000
    assert client.get(f"/api/v1/orders/{before['id']}").get_json()["amount_fen"] == before["amount_fen"]


@pytest.mark.parametrize("body, field", [
    ({}, "_schema"),
    ({"code": "CDCER-NEW"}, "code"),
    ({"vintage": 2030}, "vintage"),
    ({"registry": "VCS"}, "registry"),
    ({"price_fen_per_tonne": -1}, "price_fen_per_tonne"),
])
def test_patch_changes_only_price_and_descriptions(client, operator, body, field):
    project = client.get("/api/v1/projects").get_json()["items"][0]
    response = client.patch(f"/api/v1/projects/{project['id']}", json=body, headers=operator)
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]
    assert client.patch("/api/v1/projects/prj_nope", json={"name": "x"}, headers=operator).status_code == 404


def test_orders_list_filters_and_pages(client, operator, database):
    projects = client.get("/api/v1/projects").get_json()["items"]
    first, second = projects[0], projects[1]
    placed = [buy(client, first["id"], 1, participant=f"p-{i}").get_json()["id"] for i in range(5)]
    other = buy(client, second["id"], 2).get_json()["id"]
    GuestClient(client, "p-0").post(f"/api/v1/orders/{placed[0]}/payment")

    everything = client.get("/api/v1/orders?limit=200", headers=operator).get_json()
    assert [o["id"] for o in everything["items"]] == placed + [other]  # oldest first
    assert everything["next_after"] is None

    ids, after = [], None
    while True:
        query = "/api/v1/orders?limit=2" + (f"&after={after}" if after else "")
        page = client.get(query, headers=operator).get_json()
        assert len(page["items"]) <= 2
        ids += [o["id"] for o in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert ids == placed + [other]

    by_project = client.get(f"/api/v1/orders?project={second['code']}", headers=operator).get_json()
    assert [o["id"] for o in by_project["items"]] == [other]
    paid = client.get("/api/v1/orders?status=paid", headers=operator).get_json()
    assert [o["id"] for o in paid["items"]] == [placed[0]]
    assert paid["items"][0]["participant"]["id"] == "p-0"


def test_orders_list_by_scene(client, operator, database):
    project = client.get("/api/v1/projects").get_json()["items"][0]
    with UnitOfWork(database) as uow:
        body, _status = ordering.create_order(uow, key="k-scene", fingerprint="f", project_id=project["id"],
                                               requested_kg=3, participant={"id": "p", "display_name": "P"},
                                               scene={"slug": "cdcn-forum-2021", "name": "Forum"},
                                               estimate_id=None)
    buy(client, project["id"], 1)
    page = client.get("/api/v1/orders?scene=cdcn-forum-2021", headers=operator).get_json()
    assert [o["id"] for o in page["items"]] == [body["id"]]
    assert page["items"][0]["scene"] == {"slug": "cdcn-forum-2021", "name": "Forum"}


@pytest.mark.parametrize("query, field", [
    ("status=shipped", "status"), ("limit=0", "limit"), ("limit=201", "limit"), ("after=ord_nope", "after"),
    ("scene=Not%20A%20Slug", "scene"),
])
def test_orders_list_validates_its_query(client, operator, query, field):
    response = client.get(f"/api/v1/orders?{query}", headers=operator)
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]
    assert client.get("/api/v1/orders?project=nope", headers=operator).status_code == 404


def test_operator_endpoints_are_documented_as_such(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["paths"]["/api/v1/projects"]["post"]["security"] == [{"ApiKeyAuth": []}]
    assert "security" not in spec["paths"]["/api/v1/projects"]["get"]
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"]["name"] == "X-API-Key"
    assert "/api/v1/payments/{provider}/webhook" in spec["paths"]
    ledger_ok = spec["paths"]["/api/v1/ledger"]["get"]["responses"]["200"]["content"]
    assert set(ledger_ok) == {"application/json", "text/csv"}


# --- the same through ``flask`` commands -----------------------------------------------

@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def test_cli_creates_issues_prices_and_lists(cli, client):
    created = cli("projects", "create", "--code", "CDCER-CLI", "--name", "命令行项目", "--name-en", "CLI project",
                  "--type", "household_biogas", "--location", "Pujiang", "--vintage", "2025",
                  "--price-fen-per-tonne", "5200")
    assert created.exit_code == 0, created.output
    project = json.loads(created.output)
    assert project["code"] == "CDCER-CLI" and project["price_fen_per_tonne"] == 5200

    issued = cli("projects", "issue", "CDCER-CLI", "1", "1000")  # by code
    assert issued.exit_code == 0, issued.output
    assert json.loads(issued.output)["project"]["available_kg"] == 1000
    overlap = cli("projects", "issue", project["id"], "900", "1200")  # by id
    assert overlap.exit_code != 0 and "serials_overlap" in overlap.output

    priced = cli("projects", "set-price", "CDCER-CLI", "6100")
    assert priced.exit_code == 0 and json.loads(priced.output)["price_fen_per_tonne"] == 6100
    assert buy(client, project["id"], 10).get_json()["amount_fen"] == 61

    listed = cli("projects", "list")
    assert listed.exit_code == 0
    header, *rows = listed.output.splitlines()
    assert header.split("\t")[:2] == ["code", "id"]
    row = next(r.split("\t") for r in rows if r.startswith("CDCER-CLI\t"))
    assert row[1] == project["id"] and row[-1] == "990"  # available_kg
    assert any(p["code"] == "CDCER-CLI" for p in json.loads(cli("projects", "list", "--json").output))


def test_cli_refuses_what_the_api_refuses(cli):
    bad = cli("projects", "create", "--code", "lower", "--name", "x", "--name-en", "x", "--type", "t_x",
              "--location", "x", "--vintage", "2024", "--price-fen-per-tonne", "1")
    assert bad.exit_code != 0 and "code" in bad.output
    assert cli("projects", "issue", "NO-SUCH-PROJECT", "1", "2").exit_code != 0
    assert cli("projects", "set-price", "CDCER-PJ-BIOGAS", "0").exit_code != 0


def test_cli_lists_orders(cli, client):
    project = client.get("/api/v1/projects").get_json()["items"][0]
    ids = [buy(client, project["id"], 2, participant=f"cli-{i}").get_json()["id"] for i in range(3)]
    table = cli("orders", "list", "--project", project["code"], "--limit", "2")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split("\t")[:2] == ["id", "status"]
    assert [line.split("\t")[0] for line in lines[1:3]] == ids[:2]
    assert f"more: --after {ids[1]}" in table.output
    rest = json.loads(cli("orders", "list", "--after", ids[1], "--json").output)
    assert [o["id"] for o in rest["items"]] == [ids[2]]
    assert cli("orders", "list", "--status", "shipped").exit_code != 0


def test_a_project_may_give_its_location_in_chinese(client, operator):
    """Issue 21: zh pages show location_zh; a project without one (null) shows location."""
    without = create_project(client, operator)
    assert without["location_zh"] is None
    project = create_project(client, operator, code="CDCER-DJY-ZH", location_zh="四川省成都市都江堰市")
    assert client.get(f"/api/v1/projects/{project['id']}").get_json()["location_zh"] == "四川省成都市都江堰市"
    changed = client.patch(f"/api/v1/projects/{project['id']}", headers=operator,
                           json={"location_zh": "四川省都江堰市"}).get_json()
    assert (changed["location_zh"], changed["location"]) == ("四川省都江堰市", "Dujiangyan, Chengdu")
    blank = client.patch(f"/api/v1/projects/{project['id']}", headers=operator, json={"location_zh": " "})
    assert blank.status_code == 422 and "location_zh" in blank.get_json()["error"]["fields"]


def test_the_demo_projects_have_chinese_locations(app, client, database):
    with UnitOfWork(database) as uow:  # a demo project seeded before locations had Chinese
        uow.session.execute(update(Project).where(Project.code == "CDCER-XJ-PV").values(location_zh=None))
    assert app.test_cli_runner().invoke(args=["seed-demo"]).exit_code == 0
    projects = {p["code"]: p for p in client.get("/api/v1/projects").get_json()["items"]}
    assert {code: projects[code]["location_zh"] for code in DEMO_LOCATIONS_ZH} == DEMO_LOCATIONS_ZH
