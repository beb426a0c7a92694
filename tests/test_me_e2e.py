"""A guest's own things through the real gateway and services (`make run`'s processes): the
routes /me reads answer only for the browser's cookie, and /me shows them."""
from __future__ import annotations

import uuid

import pytest
import requests

pytestmark = pytest.mark.integration

SCENE = "cdcn-forum-2021"


def test_a_guests_own_routes_answer_for_their_cookie_only(driver, stack):
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    estimate = driver.api("POST", "/api/v1/estimates", guest=alice, json={
        "kind": "trip", "scene": SCENE, "activities": [{"type": "rail", "distance_km": 100}]})
    assert estimate.status_code == 201, estimate.text
    project = driver.api("GET", "/api/v1/projects").json()["items"][0]
    order = driver.api("POST", "/api/v1/orders", guest=alice, headers={"Idempotency-Key": uuid.uuid4().hex},
                       json={"project_id": project["id"], "estimate_id": estimate.json()["id"],
                             "participant": {"display_name": "Alice"}, "scene": SCENE})
    assert order.status_code == 201, order.text

    mine = driver.api("GET", "/api/v1/my-estimates", guest=alice).json()
    assert [e["id"] for e in mine["items"]] == [estimate.json()["id"]]
    orders = driver.api("GET", "/api/v1/my-orders", guest=alice).json()
    assert [o["id"] for o in orders["items"]] == [order.json()["id"]]
    assert driver.api("GET", "/api/v1/my-standings", guest=alice).json()["scenes"] == []  # not paid yet

    driver.api("GET", "/api/v1/scenes", guest=bob)  # a browser of its own, with no cookie yet
    for path in ("/api/v1/my-orders", "/api/v1/my-estimates", "/api/v1/my-standings"):
        assert driver.api("GET", path, guest=bob).status_code == 401      # no cookie: nobody
        anonymous = requests.get(f"{stack.url}{path}", cookies={"dd_participant": "forged"}, timeout=10)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    page = driver.api("GET", "/me", guest=alice, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert f'href="/pay/{order.json()["id"]}"' in page.text
    assert f'href="/e/{estimate.json()["id"]}"' in page.text
    assert "Nothing here yet" in driver.api("GET", "/me", guest=bob, headers={"Accept-Language": "en"}).text
