"""The ranking API against a real Redis filled through the record task."""
from __future__ import annotations

import socket
import time
from datetime import timedelta

import pytest

from ranking import tasks
from ranking.app import create_app
from ranking.schemas import BoardPage, ParticipantStanding
from ranking.tests.helpers import minutes_before, order


@pytest.fixture
def client(env, redis_client):
    return create_app(database_url=env).test_client()


@pytest.fixture
def forum(client, now):
    """Six participants on scene forum-2025 (one of them also elsewhere), two organisations."""
    entries = [("alice", 30, 50, "ACME", "Alice Wong", True), ("bob", 20, 40, "ACME", "Bob", False),
               ("carol", 20, 45, None, "张三", True), ("dave", 10, 30, "Globex", "Dave", False),
               ("erin", 5.5, 20, "Globex", "Erin", False), ("frank", 1.125, 10, None, "Frank", False)]
    for i, (participant, kg, minutes, organization, name, mask) in enumerate(entries):
        tasks.record.run(order(f"o-{i}", participant, kg, minutes_before(now, minutes), organization=organization,
                               name=name, mask=mask))
    tasks.record.run(order("o-elsewhere", "frank", 100, minutes_before(now, 5), scene="west-lake", name="Frank"))
    tasks.record.run(order("o-old", "bob", 7, now - timedelta(days=60), name="Bob"))  # all-time boards only
    return client


def test_top_of_a_scene_board(forum):
    response = forum.get("/api/v1/rankings?board=individual&scene=forum-2025&period=day")
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 6
    assert body["items"] == [
        {"rank": 1, "participant_id": "alice", "display_name": "A***", "kg": 30.0},
        # carol and bob both have 20 kg today; carol got there first (45 vs 40 minutes ago)
        {"rank": 2, "participant_id": "carol", "display_name": "张*", "kg": 20.0},
        {"rank": 3, "participant_id": "bob", "display_name": "Bob", "kg": 20.0},
        {"rank": 4, "participant_id": "dave", "display_name": "Dave", "kg": 10.0},
        {"rank": 5, "participant_id": "erin", "display_name": "Erin", "kg": 5.5},
        {"rank": 6, "participant_id": "frank", "display_name": "Frank", "kg": 1.125},
    ]


def test_all_time_and_global_boards(forum):
    all_time = forum.get("/api/v1/rankings?scene=forum-2025&limit=3").get_json()
    assert [(i["participant_id"], i["kg"]) for i in all_time["items"]] == [("alice", 30.0), ("bob", 27.0),
                                                                          ("carol", 20.0)]
    assert all_time["total"] == 6
    global_week = forum.get("/api/v1/rankings?period=week&limit=1").get_json()
    assert global_week == {"items": [{"rank": 1, "participant_id": "frank", "display_name": "Frank",
                                      "kg": 101.125}], "total": 6}


def test_organisation_board(forum):
    body = forum.get("/api/v1/rankings?board=organization&scene=forum-2025&period=month").get_json()
    assert body == {"items": [{"rank": 1, "organization": "acme", "display_name": "ACME", "kg": 50.0},
                              {"rank": 2, "organization": "globex", "display_name": "Globex", "kg": 15.5}],
                    "total": 2}


def test_an_empty_board(client):
    assert client.get("/api/v1/rankings?scene=nobody-here").get_json() == {"items": [], "total": 0}


def test_blank_parameters_mean_the_defaults(forum):
    assert forum.get("/api/v1/rankings?scene=&period=&limit=").get_json() == \
        forum.get("/api/v1/rankings").get_json()


@pytest.mark.parametrize("query,field", [("board=team", "board"), ("period=year", "period"),
                                         ("scene=Forum 2025", "scene"), ("scene=a:b", "scene"),
                                         ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"),
                                         ("limit=1e2", "limit")])
def test_invalid_board_parameters_are_422_naming_the_field(client, query, field):
    response = client.get(f"/api/v1/rankings?{query}")
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and list(error["fields"]) == [field]


def test_a_participant_with_neighbours(forum):
    response = forum.get("/api/v1/rankings/participants/bob?scene=forum-2025&period=day")
    assert response.status_code == 200
    assert response.get_json() == {
        "participant_id": "bob", "scene": "forum-2025", "period": "day",
        "rank": 3, "kg": 20.0, "total": 6, "display_name": "Bob",
        "neighbours": [{"rank": 1, "participant_id": "alice", "display_name": "A***", "kg": 30.0},
                       {"rank": 2, "participant_id": "carol", "display_name": "张*", "kg": 20.0},
                       {"rank": 4, "participant_id": "dave", "display_name": "Dave", "kg": 10.0},
                       {"rank": 5, "participant_id": "erin", "display_name": "Erin", "kg": 5.5}]}


def test_neighbours_at_the_edges_of_the_board(forum):
    top = forum.get("/api/v1/rankings/participants/alice?scene=forum-2025").get_json()
    assert (top["rank"], [n["rank"] for n in top["neighbours"]]) == (1, [2, 3])
    bottom = forum.get("/api/v1/rankings/participants/frank?scene=forum-2025&period=day").get_json()
    assert (bottom["rank"], [n["rank"] for n in bottom["neighbours"]]) == (6, [4, 5])
    alone = forum.get("/api/v1/rankings/participants/frank?scene=west-lake").get_json()
    assert alone == {"participant_id": "frank", "scene": "west-lake", "period": "all", "rank": 1, "kg": 100.0,
                     "total": 1, "display_name": "Frank", "neighbours": []}


def test_responses_are_exactly_what_the_schemas_document(forum):
    # The views build their JSON themselves (no per-field dump): loading it back with the
    # documented schemas, which refuse unknown fields, keeps the OpenAPI document true.
    for query in ("board=individual&scene=forum-2025&period=day", "board=organization&period=month"):
        BoardPage().load(forum.get(f"/api/v1/rankings?{query}").get_json())
    for query in ("scene=forum-2025&period=day", ""):
        ParticipantStanding().load(forum.get(f"/api/v1/rankings/participants/bob?{query}").get_json())


def test_a_member_without_a_stored_name_is_shown_by_its_id(forum, redis_client):
    redis_client.hdel("rank:names:individual", "bob")
    body = forum.get("/api/v1/rankings?scene=forum-2025&limit=3").get_json()
    assert [(i["participant_id"], i["display_name"]) for i in body["items"]] == [
        ("alice", "A***"), ("bob", "bob"), ("carol", "张*")]
    assert forum.get("/api/v1/rankings/participants/bob?scene=forum-2025").get_json()["display_name"] == "bob"


def test_a_participant_not_on_the_board_is_404(forum):
    for url in ("/api/v1/rankings/participants/nobody",
                "/api/v1/rankings/participants/dave?scene=west-lake",
                "/api/v1/rankings/participants/bob?scene=nobody-here&period=day"):
        response = forum.get(url)
        assert response.status_code == 404, url
        assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("url,field", [("/api/v1/rankings/participants/bob?period=decade", "period"),
                                       ("/api/v1/rankings/participants/bob?scene=UPPER", "scene"),
                                       ("/api/v1/rankings/participants/" + "p" * 129, "participant_id")])
def test_invalid_participant_queries_are_422(client, url, field):
    response = client.get(url)
    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == [field]


def test_a_revoked_order_leaves_the_api_too(forum):
    tasks.revoke.run({"v": 1, "order_id": "o-0"})   # alice's only order
    body = forum.get("/api/v1/rankings?scene=forum-2025&period=day&limit=2").get_json()
    assert [i["participant_id"] for i in body["items"]] == ["carol", "bob"] and body["total"] == 5
    assert forum.get("/api/v1/rankings/participants/alice?scene=forum-2025").status_code == 404


def assert_quick_503(client):
    started = time.monotonic()
    for url in ("/api/v1/rankings", "/api/v1/rankings/participants/bob"):
        response = client.get(url)
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "service_unavailable"
    assert time.monotonic() - started < 4


def test_redis_refusing_connections_is_a_quick_503(env, monkeypatch):
    from diandian_common.testing import free_port
    monkeypatch.setenv("RANKING_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert_quick_503(create_app(database_url=env).test_client())


def test_redis_that_never_answers_is_a_quick_503(env, monkeypatch):
    with socket.socket() as silent:          # accepts connections (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        monkeypatch.setenv("RANKING_REDIS_URL", f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        monkeypatch.setenv("RANKING_REDIS_TIMEOUT_SECONDS", "0.2")
        assert_quick_503(create_app(database_url=env).test_client())


def test_openapi_documents_both_endpoints(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert {"/api/v1/rankings", "/api/v1/rankings/participants/{participant_id}"} <= set(paths)
