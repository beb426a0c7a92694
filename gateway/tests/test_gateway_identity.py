"""Guests are who the gateway says: the signed cookie becomes the participant assertion the
services trust; nothing a client sends names a participant."""
from __future__ import annotations

import pytest

from diandian_common.auth import PARTICIPANT_ASSERTION_HEADER, Guest, sign_participant_assertion
from gateway import participants
from gateway.app import create_app


@pytest.fixture
def app(gateway_env):
    return create_app()


def cookie_of(response) -> str | None:
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == participants.COOKIE_NAME:
            return participants._serializer().loads(rest.split(";", 1)[0])
    return None


def test_placing_an_order_gives_the_browser_its_id_and_the_service_that_id(app):
    browser = app.test_client()
    first = browser.post("/api/v1/orders", json={"participant": {"display_name": "王芳"}})
    minted = cookie_of(first)
    assert minted and minted.startswith("p_")
    assert first.get_json()["guest"] == {"participant_id": minted, "address": "127.0.0.1"}
    again = browser.post("/api/v1/orders", json={})
    assert cookie_of(again) is None  # kept, not minted again
    assert again.get_json()["guest"]["participant_id"] == minted
    paying = browser.post("/api/v1/orders/ord_1/payment")
    assert paying.get_json()["guest"]["participant_id"] == minted


def test_estimates_join_too_and_reads_mint_nothing(app):
    reader = app.test_client()
    read = reader.get("/api/v1/orders/ord_1")
    assert read.get_json()["guest"] is None and cookie_of(read) is None
    estimated = reader.post("/api/v1/estimates", json={})
    assert estimated.get_json()["guest"]["participant_id"] == cookie_of(estimated)
    assert reader.get("/api/v1/orders/ord_1").get_json()["guest"]["participant_id"] == cookie_of(estimated)


def test_a_client_cannot_send_its_own_assertion(app):
    forged = sign_participant_assertion(Guest("p_victim", "10.0.0.9"), "POST", "/api/v1/orders")
    browser = app.test_client()
    reply = browser.post("/api/v1/orders", json={}, headers={PARTICIPANT_ASSERTION_HEADER: forged})
    seen = reply.get_json()
    assert seen["guest"]["participant_id"] == cookie_of(reply) != "p_victim"
    assert seen["headers"][PARTICIPANT_ASSERTION_HEADER] != forged
    # ... nor on a read, where the gateway vouches for nobody
    read = app.test_client().get("/api/v1/orders/ord_1", headers={PARTICIPANT_ASSERTION_HEADER: forged})
    assert read.get_json()["guest"] is None and PARTICIPANT_ASSERTION_HEADER not in read.get_json()["headers"]


def test_a_cookieless_cross_site_payment_is_nobodys(app):
    # A form posted from another site carries no SameSite=Lax cookie: the service hears of no guest.
    reply = app.test_client().post("/api/v1/orders/ord_1/payment", data={"x": "1"},
                                   headers={"Origin": "https://evil.example"})
    assert reply.get_json()["guest"] is None and cookie_of(reply) is None


def test_the_development_cookie_key_is_announced(gateway_env, caplog):
    create_app()
    assert "GATEWAY_SECRET_KEY is not set" in caplog.text
    caplog.clear()
    gateway_env.setenv("GATEWAY_SECRET_KEY", "k" * 48)
    create_app()
    assert "GATEWAY_SECRET_KEY" not in caplog.text


def test_a_forged_cookie_is_someone_new(app):
    browser = app.test_client()
    browser.set_cookie(participants.COOKIE_NAME, "p_victim.not-signed")
    reply = browser.post("/api/v1/orders", json={})
    assert reply.get_json()["guest"]["participant_id"] == cookie_of(reply) != "p_victim"


def test_keys_with_the_guests_scope_act_for_guests_only_where_guests_act(app):
    store = app.extensions["keys"]
    _, kiosk = store.create("kiosk", ["guests"])
    _, scenes = store.create("scenes", ["scenes"])
    client = app.test_client()
    on_behalf = client.post("/api/v1/orders", json={}, headers={"X-API-Key": kiosk}).get_json()
    assert on_behalf["operator"]["scopes"] == ["guests"]
    estimate = client.post("/api/v1/estimates", json={}, headers={"X-API-Key": kiosk}).get_json()
    assert estimate["operator"]["scopes"] == ["guests"]
    # elsewhere a guests key is nobody special, nor is a key of another scope on the guests' routes
    assert client.get("/api/v1/ledger", headers={"X-API-Key": kiosk}).get_json()["operator"] == "unauthorized"
    assert client.post("/api/v1/orders", json={}, headers={"X-API-Key": scenes}).get_json()["operator"] == \
        "unauthorized"
