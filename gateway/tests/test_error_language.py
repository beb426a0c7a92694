"""The gateway's API errors in the language the client asks for (diandian_common.i18n): its
own refusals (the request guard, keys and scopes, unknown API paths, sizes, rate limits,
services down or slow) and, through the proxy, a real service's, since the gateway forwards
Accept-Language and relays Content-Language and Vary. A new refusal belongs in the battery."""
from __future__ import annotations

import threading

import pytest
import redis
from werkzeug.serving import make_server

from diandian_common.testing import (
    ACCEPT_LANGUAGE,
    assert_error_language,
    assert_errors_in_language,
    free_port,
    migrated_sqlite_url,
)
from gateway.app import create_app
from gateway.security import MAX_HEADER_BYTES, MAX_URL_BYTES

LANGUAGES = ["zh", "en"]

REFUSED = [
    ("GET", "/api/v1//scenes", {}),                                   # invalid_path
    ("GET", "/api/v1/scenes/%252e%252e", {}),
    ("GET", "/api/v1/nothing-here", {}),                              # no API there
    ("POST", "/api/v1/scenes", {"json": {}}),                         # 401: no key
    ("POST", "/api/v1/scenes", {"json": {}, "headers": {"X-API-Key": "dd_not_a_key"}}),  # 403
    ("TRACE", "/api/v1/scenes", {}),                                  # 405
    ("POST", "/healthz", {}),
    ("POST", "/api/v1/orders", {"data": b"x" * (1024 * 1024 + 1), "content_type": "application/json"}),  # 413
    ("GET", "/api/v1/scenes?q=" + "x" * MAX_URL_BYTES, {}),          # 414
    ("GET", "/api/v1/scenes", {"headers": {f"X-Pad-{n}": "x" * 4000
                                           for n in range(MAX_HEADER_BYTES // 4000 + 1)}}),  # 431
    ("GET", "/api/v1/scenes/forum?sleep=0.6", {}),                    # 504: the stand-in is slow
    ("POST", "/api/v1/certificates/cert_1/card.png", {}),             # the share card is read only
]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_gateways_own_refusals_speak_the_asked_language(gateway_env, language):
    gateway_env.setenv("GATEWAY_READ_TIMEOUT", "0.2")
    assert_errors_in_language(create_app().test_client(), REFUSED, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_service_down_an_unknown_host_and_a_redirect_speak_the_asked_language(gateway_env, language):
    gateway_env.setenv("RANKING_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    gateway_env.setenv("CERTIFICATES_URL", f"http://127.0.0.1:{free_port()}")  # nor here
    gateway_env.setenv("GATEWAY_ALLOWED_HOSTS", "diandian.example")
    client = create_app().test_client()
    assert_errors_in_language(client, [
        ("GET", "/api/v1/rankings", {"headers": {"Host": "diandian.example"}}),   # 503
        ("GET", "/api/v1/certificates/cert_1/card.png", {"headers": {"Host": "diandian.example"}}),
        ("GET", "/api/v1/scenes", {"headers": {"Host": "evil.example"}}),         # 400 invalid_host
    ], language)
    doubled = "//operator//scenes"
    redirected = client.get(
        "/", environ_overrides={"RAW_URI": doubled, "PATH_INFO": doubled, "REQUEST_URI": doubled},
        headers={"Host": "diandian.example", "Accept-Language": ACCEPT_LANGUAGE[language]})
    assert redirected.status_code == 308
    assert_error_language(redirected, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_rate_limit_speaks_the_asked_language(gateway_env, redis_url, language):
    gateway_env.setenv("REDIS_URL", redis_url)
    gateway_env.delenv("RATE_LIMIT_ENABLED", raising=False)
    gateway_env.delenv("RATE_LIMIT_STORAGE_URL", raising=False)
    gateway_env.setenv("RATE_LIMIT_READS", "1/minute")
    redis.Redis.from_url(redis_url).flushall()
    client = create_app().test_client()
    assert client.get("/api/v1/scenes").status_code == 200
    limited = client.get("/api/v1/scenes", headers={"Accept-Language": ACCEPT_LANGUAGE[language]})
    assert limited.status_code == 429
    assert_error_language(limited, language)


@pytest.fixture
def calculator_behind_the_gateway(gateway_env, tmp_path):
    """The real calculator on a real port, and the gateway's test client in front of it."""
    from calculator.app import create_app as create_calculator

    gateway_env.setenv("PUBLIC_BASE_URL", "https://diandian.example")
    gateway_env.delenv("CALCULATOR_FACTOR_SET", raising=False)
    calculator = create_calculator(migrated_sqlite_url("calculator", tmp_path))
    port = free_port()
    server = make_server("127.0.0.1", port, calculator, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    gateway_env.setenv("CALCULATOR_URL", f"http://127.0.0.1:{port}")
    yield create_app().test_client()
    server.shutdown()
    server.server_close()
    calculator.extensions["db"].dispose()


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_services_refusal_through_the_proxy_speaks_the_asked_language(calculator_behind_the_gateway,
                                                                         language):
    unknown_airport = {"kind": "trip", "activities": [{"type": "flight", "from": "CTU", "to": "XQZ"}]}
    assert_errors_in_language(calculator_behind_the_gateway, [
        ("POST", "/api/v1/estimates", {"json": unknown_airport}),
        ("POST", "/api/v1/estimates", {"json": {"kind": "trip", "activities": []}}),
        ("GET", "/api/v1/estimates/not-an-id", {}),
    ], language)
    response = calculator_behind_the_gateway.post("/api/v1/estimates", json=unknown_airport,
                                                  headers={"Accept-Language": ACCEPT_LANGUAGE[language]})
    assert response.get_json()["error"]["fields"] == {"activities": {"0": {"to": [
        "未知的 IATA 机场代码 'XQZ'" if language == "zh" else "unknown IATA airport code 'XQZ'"]}}}
    assert response.headers.getlist("Vary").count("Accept-Language") <= 1


def test_the_gateway_forwards_accept_language(gateway_env):
    echoed = create_app().test_client().get("/api/v1/scenes", headers={"Accept-Language": "zh-TW,en;q=0.5"})
    assert echoed.get_json()["headers"]["Accept-Language"] == "zh-TW,en;q=0.5"


# --- the pages: what a page asks of a service, it asks in the page's language ---------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_pages_ask_the_services_in_the_pages_language(client, services, language):
    """The operator's scene form shows the calculator's field errors, and a guest page what the
    services answer: both ask in the page's language (the dd_lang cookie here, whatever the
    browser's Accept-Language), so the API's messages they show are in it."""
    from gateway.tests.pages_support import csrf_of, login, page

    asked = []

    def refuse_scene(req):
        asked.append(req.headers.get("Accept-Language"))
        return 422, {"error": {"code": "validation_error", "message": "some fields are invalid",
                               "fields": {"slug": ["lowercase letters, digits and single hyphens only"]}}}

    services["calculator"].on("POST", "/api/v1/scenes", refuse_scene)
    client.set_cookie("dd_lang", language)
    login(client)
    csrf = csrf_of(page(client, "/operator/scenes"))
    refused = client.post("/operator/scenes", headers={"Accept-Language": "de"},
                          data={"csrf": csrf, "slug": "Bad Slug", "name": "x", "type": "hotel"})
    assert refused.status_code == 422
    assert asked == [language]
    client.get("/s/forum", headers={"Accept-Language": "de"})
    assert services["calculator"].requests[-1]["path"] == "/api/v1/scenes/forum"
    assert services["calculator"].requests[-1]["accept_language"] == language
