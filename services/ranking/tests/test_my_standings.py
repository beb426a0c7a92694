"""GET /api/v1/my-standings: a guest's own ranks (overall and per scene), for the gateway's /me page."""
from __future__ import annotations

from datetime import timedelta

import pytest

from diandian_common.testing import GuestClient, free_port
from ranking import tasks
from ranking.app import create_app
from ranking.tests.helpers import minutes_before, order


@pytest.fixture
def client(env, redis_client, now):
    tasks.record.run(order("o-1", "alice", 30, minutes_before(now, 50)))
    tasks.record.run(order("o-2", "bob", 20, minutes_before(now, 40)))
    tasks.record.run(order("o-3", "bob", 100, minutes_before(now, 5), scene="west-lake"))
    tasks.record.run(order("o-4", "bob", 1, now - timedelta(days=60), scene=None))
    tasks.record.run(order("o-5", "carol", 2, minutes_before(now, 30), scene="old-fair"))
    tasks.record.run(order("o-6", "bob", 9, minutes_before(now, 90), scene="old-fair"))
    return create_app(database_url=env).test_client()


def test_the_guests_ranks_overall_and_per_scene_most_recent_first(client):
    body = GuestClient(client, "bob").get("/api/v1/my-standings").get_json()
    assert body["overall"] == {"scene": None, "rank": 1, "kg": 130.0, "total": 3}
    assert body["scenes"] == [
        {"scene": "west-lake", "rank": 1, "kg": 100.0, "total": 1},
        {"scene": "forum-2025", "rank": 2, "kg": 20.0, "total": 2},
        {"scene": "old-fair", "rank": 1, "kg": 9.0, "total": 2},
    ]
    assert body["more_scenes"] is False


def test_limit_bounds_the_scenes(client):
    body = GuestClient(client, "bob").get("/api/v1/my-standings", query_string={"limit": 1}).get_json()
    assert [s["scene"] for s in body["scenes"]] == ["west-lake"] and body["more_scenes"] is True


def test_a_guest_on_no_board_gets_nothing(client):
    body = GuestClient(client, "nobody").get("/api/v1/my-standings").get_json()
    assert body == {"overall": None, "scenes": [], "more_scenes": False}


def test_without_the_gateways_assertion_is_401(client):
    response = client.get("/api/v1/my-standings")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def test_a_forged_assertion_is_403(client):
    assert client.get("/api/v1/my-standings", headers={"X-Diandian-Participant": "a.b.c"}).status_code == 403


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "51"}, {"limit": "x"}, {"limit": "9" * 40},
                                   {"limit": "\u202e\x00"}])
def test_hostile_parameters_are_422(client, query):
    response = GuestClient(client, "bob").get("/api/v1/my-standings", query_string=query)
    assert response.status_code == 422 and response.get_json()["error"]["fields"]


def test_redis_down_is_503(client, env, monkeypatch):
    monkeypatch.setenv("RANKING_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    fresh = create_app(database_url=env).test_client()
    response = GuestClient(fresh, "bob").get("/api/v1/my-standings")
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "service_unavailable"
