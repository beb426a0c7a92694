"""The tests' own plumbing (diandian_common.testing): wait_for, the redis-server of the
tests and the Driver on a Flask test client."""
from __future__ import annotations

import itertools

import pytest
import redis
from flask import Flask, jsonify, request

from diandian_common.auth import request_guest
from diandian_common.testing import Driver, redis_server, wait_for


def test_wait_for_returns_the_first_truthy_value_and_retries_what_it_is_told_to():
    calls = itertools.count()

    def flaky():
        n = next(calls)
        if n == 0:
            raise ConnectionError("not yet")
        return n >= 2 and {"n": n}
    assert wait_for(flaky, timeout=5, interval=0.01, retry_on=(ConnectionError,)) == {"n": 2}


def test_wait_for_names_what_it_waited_for_and_the_diagnostics():
    with pytest.raises(AssertionError, match=r"(?s)waiting for the moon; last value 0\n.*the log says so"):
        wait_for(lambda: 0, timeout=0.05, interval=0.01, what="the moon", on_timeout=lambda: "the log says so")
    with pytest.raises(KeyError):   # anything not retried is raised at once
        wait_for(lambda: {}["x"], timeout=5)


def test_redis_server_is_private_and_gone_afterwards(tmp_path):
    with redis_server(tmp_path) as url:
        client = redis.Redis.from_url(url)
        assert client.ping() and not url.endswith(":6379/0")
        client.close()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()


def test_the_redis_url_fixture_is_emptied_for_each_test(redis_url):
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("left-behind", 1)   # the next test using the fixture does not see it
    client.close()


def test_the_driver_places_and_pays_an_order_through_a_flask_test_client():
    app = Flask("stand-in-orders")
    orders = {}

    @app.post("/api/v1/orders")
    def place():
        body = request.get_json()
        assert "id" not in body["participant"]  # guests never name themselves
        guest = request_guest()  # the assertion the driver signs, as the gateway would
        order = {"id": f"ord_{len(orders) + 1}", "status": "pending_payment", "key": request.headers["Idempotency-Key"],
                 "quantity_kg": body["quantity_kg"], "participant": {**body["participant"], "id": guest.participant_id},
                 "scene": body.get("scene")}
        orders[order["id"]] = order
        return jsonify(order), 201

    @app.post("/api/v1/orders/<order_id>/payment")
    def pay(order_id):
        assert request_guest().participant_id == orders[order_id]["participant"]["id"]  # paid by its guest
        orders[order_id]["status"] = "completed"   # a pipeline of no time at all
        return jsonify({"id": order_id, "status": "paid"}), 202

    @app.get("/api/v1/orders/<order_id>")
    def show(order_id):
        return jsonify({**orders[order_id], "operator": request.headers.get("X-API-Key"),
                        "query": request.args.to_dict()})

    driver = Driver(app.test_client(), operator_key="k")
    placed = driver.place_and_pay_order("prj_1", 7, scene="forum")
    assert placed["status"] == "pending_payment" and placed["scene"] == "forum" and placed["quantity_kg"] == 7
    assert placed["participant"]["id"].startswith("guest-") and len(placed["key"]) == 32
    done = driver.place_and_pay_order("prj_1", 3, {"id": "p-1", "display_name": "Guest"}, complete=True)
    assert done["status"] == "completed" and done["participant"]["id"] == "p-1" and done["scene"] is None
    assert driver.participant_id("p-1") == "p-1" and driver.guest_of(done) == "p-1"
    answer = driver.api("GET", f"/api/v1/orders/{done['id']}", operator=True, params={"a": "b"})
    assert answer.status_code == 200 and answer.json()["operator"] == "k" and answer.json()["query"] == {"a": "b"}
    assert '"status":"completed"' in answer.text.replace(" ", "")
