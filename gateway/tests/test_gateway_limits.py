"""Rate limits at the HTTP level, on a real redis-server of the tests' own."""
from __future__ import annotations

import pytest
import redis

from diandian_common.testing import free_port, migrated_sqlite_url
from gateway import participants
from gateway.app import create_app

LIMITS = {"RATE_LIMIT_ORDERS": "3/minute", "RATE_LIMIT_READS": "6/minute", "RATE_LIMIT_WRITES": "4/minute",
          "RATE_LIMIT_PROVIDER_WEBHOOKS": "5/minute", "RATE_LIMIT_PER_ADDRESS": "12/minute",
          "RATE_LIMIT_ORDERS_PER_ADDRESS": "8/minute"}


@pytest.fixture
def gateway_env(upstreams, redis_url, tmp_path, monkeypatch):
    for name, upstream in upstreams.items():
        monkeypatch.setenv(f"{name.upper()}_URL", upstream.url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("RATE_LIMIT_STORAGE_URL", raising=False)
    monkeypatch.delenv("RATE_LIMIT_ENABLED", raising=False)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", migrated_sqlite_url("gateway", tmp_path))
    for variable, value in LIMITS.items():
        monkeypatch.setenv(variable, value)
    redis.Redis.from_url(redis_url).flushall()


@pytest.fixture
def app(gateway_env):
    return create_app()


def with_participant(client, participant_id: str):
    client.set_cookie(participants.COOKIE_NAME, participants._serializer().dumps(participant_id))
    return client


@pytest.fixture
def client(app):
    """One guest's browser: the same participant cookie on every request."""
    return with_participant(app.test_client(), "p_guest")


def order_write(client, **kwargs):
    """A write to the orders routes (the upstream is a stand-in: nothing is placed)."""
    return client.post("/api/v1/orders", json={}, headers={"Idempotency-Key": "k", **kwargs.pop("headers", {})},
                       **kwargs)


def cookieless(app):
    """A client that keeps no cookie the gateway sets (each request arrives as it is sent)."""
    return app.test_client(use_cookies=False)


def test_order_writes_are_limited_with_429_and_retry_after(client):
    assert [order_write(client).status_code for _ in range(3)] == [201] * 3
    limited = order_write(client)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert "Retry-After" in limited.get_json()["error"]["message"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["X-RateLimit-Limit"] == "3"
    # paying is an order write too: the same budget
    assert client.post("/api/v1/orders/o1/payment", json={}).status_code == 429
    # other categories keep their own
    assert client.get("/api/v1/scenes").status_code == 200
    assert client.post("/api/v1/estimates", json={}).status_code == 201


def test_reads_and_other_writes_have_their_own_limits(client):
    assert [client.get("/api/v1/rankings").status_code for _ in range(6)] == [200] * 6
    assert client.get("/api/v1/scenes/forum").status_code == 429  # every read counts
    assert [client.post("/api/v1/estimates", json={}).status_code for _ in range(4)] == [201] * 4
    assert client.post("/api/v1/estimates", json={}).status_code == 429


def test_guests_behind_one_address_are_told_apart_by_their_cookie(app):
    alice = with_participant(app.test_client(), "p_alice")
    bob = with_participant(app.test_client(), "p_bob")
    assert [order_write(alice).status_code for _ in range(4)] == [201, 201, 201, 429]
    assert [order_write(bob).status_code for _ in range(3)] == [201] * 3
    # no cookie: the address's own budget, untouched by theirs
    assert order_write(app.test_client()).status_code == 201


def test_a_forged_cookie_counts_as_the_address(app):
    forged = {"Cookie": f"{participants.COOKIE_NAME}=p_mallory.not-signed"}

    def pay(headers=None):
        return cookieless(app).post("/api/v1/orders/o1/payment", json={}, headers=headers).status_code

    assert [pay(forged) for _ in range(3)] == [201] * 3
    assert pay() == 429


def test_operators_are_limited_by_key(app):
    store = app.extensions["keys"]
    _, first = store.create("first", ["scenes"])
    _, second = store.create("second", ["scenes"])
    client = app.test_client()

    def create_scene(key):
        return client.post("/api/v1/scenes", json={}, headers={"X-API-Key": key}).status_code

    assert [create_scene(first) for _ in range(5)] == [201] * 4 + [429]
    assert create_scene(second) == 201
    # an invalid key is no way around the address's limit: it counts as the address
    assert [create_scene("dd_bogus") for _ in range(5)] == [403] * 4 + [429]


def test_every_address_has_an_overall_ceiling(app):
    """Fresh cookies are free to get, so rotating them ends at the address's ceiling."""
    statuses = [with_participant(app.test_client(), f"p_{n}").get("/api/v1/scenes").status_code
                for n in range(13)]
    assert statuses == [200] * 12 + [429]
    elsewhere = app.test_client().get("/api/v1/scenes", environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert elsewhere.status_code == 200


def test_rotating_cookies_end_at_the_addresss_order_ceiling(app):
    """A fresh cookie per order write escapes the per-guest limit (3), not the address's (8);
    neither does sending no cookie at all."""
    statuses = [order_write(with_participant(app.test_client(), f"p_{n}")).status_code for n in range(6)]
    statuses += [order_write(cookieless(app)).status_code for _ in range(3)]
    assert statuses == [201] * 8 + [429]
    limited = order_write(with_participant(app.test_client(), "p_new"))
    assert limited.status_code == 429 and limited.headers["X-RateLimit-Limit"] == "8"
    assert limited.get_json()["error"]["code"] == "rate_limited" and "Retry-After" in limited.headers
    # the ceiling is on orders only, and per address
    assert with_participant(app.test_client(), "p_new").post("/api/v1/estimates", json={}).status_code == 201
    elsewhere = order_write(app.test_client(), environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert elsewhere.status_code == 201


def test_operator_keys_are_not_held_to_the_addresss_order_ceiling(app):
    """A partner's server places orders for many guests from one address with one key, which
    cannot be rotated: its own limit (3) applies, not the anonymous address ceiling."""
    assert [order_write(cookieless(app)).status_code for _ in range(3)] == [201] * 3
    _, key = app.extensions["keys"].create("partner", ["projects"])
    with_key = {"X-API-Key": key}
    assert [order_write(cookieless(app), headers=with_key).status_code for _ in range(4)] == [201] * 3 + [429]
    assert [order_write(with_participant(app.test_client(), f"p_{n}")).status_code
            for n in range(6)] == [201] * 5 + [429]


def test_provider_webhooks_have_their_own_budget(client):
    assert [order_write(client).status_code for _ in range(4)][-1] == 429
    assert client.post("/api/v1/payments/sandbox/webhook", json={}).status_code == 201


def test_health_and_preflights_are_not_limited(client):
    for _ in range(8):
        assert client.get("/healthz").status_code in (200, 503)
        assert client.options("/api/v1/orders", headers={
            "Origin": "https://x.example", "Access-Control-Request-Method": "POST"}).status_code == 204
    assert client.get("/api/v1/scenes").status_code == 200


def test_limits_fail_open_when_redis_is_down(gateway_env, monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    client = create_app().test_client()
    assert [order_write(client).status_code for _ in range(5)] == [201] * 5


def test_limits_come_from_the_environment(gateway_env, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_ORDERS", "off")
    client = create_app().test_client()
    assert [order_write(client).status_code for _ in range(5)] == [201] * 5
    monkeypatch.setenv("RATE_LIMIT_ORDERS", "twenty a minute")
    with pytest.raises(ValueError):
        create_app()
    monkeypatch.setenv("RATE_LIMIT_ORDERS", "1/minute")
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")
    client = create_app().test_client()
    assert [order_write(client).status_code for _ in range(3)] == [201] * 3
