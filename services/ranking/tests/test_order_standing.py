"""``GET /api/v1/rankings/orders/<order_id>``: the rank of the guest who placed an order, what a
certificate's share card prints (issue 21) — never the participant's id or name."""
from __future__ import annotations

import pytest

from ranking import tasks
from ranking.app import create_app
from ranking.tests.helpers import minutes_before, order


@pytest.fixture
def client(env, redis_client):
    return create_app(database_url=env).test_client()


@pytest.fixture
def recorded(client, now):
    """Three guests on the scene's board: p-2 first (9 kg), p-1 second (5 + 1 kg), p-3 third."""
    for order_id, participant, kg in (("o-1", "p-1", 5), ("o-2", "p-2", 9), ("o-3", "p-1", 1),
                                      ("o-4", "p-3", 2)):
        tasks.record.run(order(order_id, participant, kg, minutes_before(now, 5), scene="expo"))


def test_the_rank_of_the_guest_who_placed_the_order(client, recorded):
    for order_id, rank in (("o-1", 2), ("o-3", 2), ("o-2", 1), ("o-4", 3)):
        body = client.get(f"/api/v1/rankings/orders/{order_id}?scene=expo").get_json()
        assert body == {"order_id": order_id, "scene": "expo", "period": "all", "rank": rank, "total": 3}
    assert client.get("/api/v1/rankings/orders/o-1").get_json()["total"] == 3   # the global board


def test_revoked_unknown_and_other_scenes_orders_are_404_without_naming_anyone(client, recorded):
    tasks.revoke.run({"v": 1, "order_id": "o-4"})
    for path in ("/api/v1/rankings/orders/o-4?scene=expo", "/api/v1/rankings/orders/nope",
                 "/api/v1/rankings/orders/o-1?scene=other"):
        response = client.get(path)
        assert response.status_code == 404
        assert "p-" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path, field", [
    ("/api/v1/rankings/orders/" + "x" * 200, "order_id"),
    ("/api/v1/rankings/orders/o-1?scene=NOT%20A%20SLUG", "scene"),
    ("/api/v1/rankings/orders/o-1?period=decade", "period"),
])
def test_hostile_queries_are_422(client, path, field):
    response = client.get(path)
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]
