"""Gateway routing, failure modes, health, request ids, security headers, CORS and
ProxyFix, against real HTTP upstreams in threads."""
from __future__ import annotations

import pytest

from diandian_common.testing import free_port, migrated_sqlite_url
from gateway.app import create_app
from gateway.routes import owner_of, renders_document, required_scope
from gateway.security import CONTENT_SECURITY_POLICY
from gateway.testing import Upstream


@pytest.fixture
def upstreams(monkeypatch, tmp_path):
    running = {"calculator": Upstream("calculator"), "orders": Upstream("orders"),
               "certificates": Upstream("certificates", healthy=False)}
    for name, upstream in running.items():
        monkeypatch.setenv(f"{name.upper()}_URL", upstream.url)
    monkeypatch.setenv("RANKING_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nor here
    monkeypatch.setenv("GATEWAY_DATABASE_URL", migrated_sqlite_url("gateway", tmp_path))
    for variable in ("CORS_ORIGINS", "GATEWAY_BEHIND_PROXY", "GATEWAY_PROXY_HOPS"):
        monkeypatch.delenv(variable, raising=False)
    yield running
    for upstream in running.values():
        upstream.stop()


@pytest.fixture
def client(upstreams):
    return create_app().test_client()


@pytest.mark.parametrize("path, owner", [
    ("/api/v1/scenes", "calculator"), ("/api/v1/scenes/x/qr.png", "calculator"),
    ("/api/v1/estimates/e1", "calculator"), ("/api/v1/airports", "calculator"),
    ("/api/v1/projects", "orders"),
    ("/api/v1/orders/o/payment", "orders"),
    ("/api/v1/ledger", "orders"), ("/api/v1/settlements", "orders"),
    ("/api/v1/webhooks/w/deliveries", "orders"),
    ("/api/v1/certificates/verify/c", "certificates"), ("/api/v1/rankings/participants/p", "ranking"),
    ("/api/v1/unknown", None), ("/healthz", None),
])
def test_every_public_path_has_one_owner(path, owner):
    assert owner_of(path) == owner


@pytest.mark.parametrize("method, path, scope", [
    ("POST", "/api/v1/scenes", "scenes"), ("PATCH", "/api/v1/scenes/forum", "scenes"),
    ("DELETE", "/api/v1/scenes/forum", "scenes"), ("GET", "/api/v1/scenes", None),
    ("GET", "/api/v1/scenes/forum/poster.pdf", None), ("POST", "/api/v1/estimates", None),
    ("POST", "/api/v1/projects", "projects"), ("PATCH", "/api/v1/projects/p1", "projects"),
    ("POST", "/api/v1/projects/p1/issuances", "projects"), ("GET", "/api/v1/projects", None),
    ("GET", "/api/v1/orders", "projects"), ("POST", "/api/v1/orders", None),
    ("GET", "/api/v1/orders/o1", None),
    ("POST", "/api/v1/orders/o1/payment", None), ("POST", "/api/v1/payments/sandbox/webhook", None),
    ("GET", "/api/v1/settlements", "projects"), ("POST", "/api/v1/webhooks", "projects"),
    ("GET", "/api/v1/webhooks/w1/deliveries", "projects"),
    ("POST", "/api/v1/certificates/c1/revoke", "admin"), ("GET", "/api/v1/certificates/c1", None),
    ("GET", "/api/v1/rankings", None), ("GET", "/api/v1/airports", None),
])
def test_operator_routes_and_their_scopes(method, path, scope):
    assert required_scope(method, path) == scope


def test_pdf_routes_are_the_rendering_ones():
    assert renders_document("/api/v1/certificates/c1/pdf")
    assert renders_document("/api/v1/scenes/forum/poster.pdf")
    assert not renders_document("/api/v1/certificates/c1")
    assert not renders_document("/api/v1/scenes/forum/qr.png")


def test_the_airport_search_reaches_the_calculator_without_a_key(client):
    response = client.get("/api/v1/airports?q=%E6%88%90%E9%83%BD&limit=3")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["service"], body["path"], body["query"]) == (
        "calculator", "/api/v1/airports", "q=%E6%88%90%E9%83%BD&limit=3")
    assert body["operator"] == "unauthorized"  # no operator key was sent, and none was needed


def test_forwards_method_path_query_body_and_request_id(client):
    response = client.post("/api/v1/orders?x=1", data='{"a": 1}', content_type="application/json",
                           headers={"X-Request-ID": "req-123"})
    assert response.status_code == 201
    body = response.get_json()
    assert {k: body[k] for k in ("service", "path", "query", "body")} == {
        "service": "orders", "path": "/api/v1/orders", "query": "x=1", "body": '{"a": 1}'}
    assert body["headers"]["X-Request-Id"] == "req-123"
    assert response.headers["X-Request-ID"] == "req-123"


def test_makes_a_request_id_when_absent(client):
    response = client.get("/api/v1/scenes")
    assert response.get_json()["headers"]["X-Request-Id"] == response.headers["X-Request-ID"]
    assert len(response.headers["X-Request-ID"]) >= 16


def test_a_down_service_is_503_naming_it_while_others_work(client):
    down = client.get("/api/v1/rankings")
    assert down.status_code == 503
    assert down.get_json()["error"]["code"] == "service_unavailable"
    assert "ranking" in down.get_json()["error"]["message"]
    assert client.get("/api/v1/scenes").status_code == 200
    # writes too, and without a retry (the service may have acted)
    assert client.post("/api/v1/rankings", json={}).status_code == 503


def test_a_slow_service_is_504_naming_it(upstreams, monkeypatch):
    monkeypatch.setenv("GATEWAY_READ_TIMEOUT", "0.2")
    client = create_app().test_client()
    slow = client.get("/api/v1/scenes/forum?sleep=0.6")
    assert slow.status_code == 504
    assert slow.get_json()["error"] == {"code": "gateway_timeout",
                                        "message": "the calculator service did not answer in time"}
    assert client.get("/api/v1/scenes/forum").status_code == 200


def test_rendering_routes_get_the_longer_timeout(upstreams, monkeypatch):
    monkeypatch.setenv("GATEWAY_READ_TIMEOUT", "0.2")
    monkeypatch.setenv("GATEWAY_RENDER_TIMEOUT", "3")
    client = create_app().test_client()
    assert client.get("/api/v1/scenes/forum/poster.pdf?sleep=0.5").status_code == 200
    assert client.get("/api/v1/scenes/forum/qr.png?sleep=0.5").status_code == 504


def test_an_unroutable_address_is_503_not_504(upstreams, monkeypatch):
    # 192.0.2.0/24 (TEST-NET-1) is never routed: the connection attempt times out.
    monkeypatch.setenv("RANKING_URL", "http://192.0.2.1:9")
    monkeypatch.setenv("GATEWAY_CONNECT_TIMEOUT", "0.2")
    response = create_app().test_client().get("/api/v1/rankings")
    assert response.status_code == 503 and "ranking" in response.get_json()["error"]["message"]


def test_unknown_api_path_is_404_json(client):
    response = client.get("/api/v1/nothing")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_health_names_the_failing_parts(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    services = response.get_json()["services"]
    assert services["calculator"] == "ok" and services["orders"] == "ok"
    assert services["certificates"].startswith("error 503")
    assert services["ranking"].startswith("unreachable")
    assert services["redis"].startswith("unreachable")


# --- security headers ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/scenes", "/api/v1/nothing", "/api/v1/rankings", "/healthz",
                                  "/no-such-page"])
def test_every_response_carries_the_security_headers(client, path):
    headers = client.get(path).headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


# --- CORS ----------------------------------------------------------------------------


@pytest.fixture
def cors_client(upstreams, monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", "https://kiosk.example, https://partner.example/")
    return create_app().test_client()


def test_no_cross_origin_access_by_default(client):
    response = client.get("/api/v1/scenes", headers={"Origin": "https://kiosk.example"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_configured_origins_may_call_the_api(cors_client):
    response = cors_client.get("/api/v1/scenes", headers={"Origin": "https://partner.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://partner.example"
    assert "Origin" in response.headers["Vary"]
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    other = cors_client.get("/api/v1/scenes", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_preflight_is_answered_by_the_gateway(cors_client, upstreams):
    preflight = cors_client.options("/api/v1/scenes", headers={
        "Origin": "https://kiosk.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-API-Key, Content-Type"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://kiosk.example"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"x-api-key", "content-type", "idempotency-key"} <= allowed
    refused = cors_client.options("/api/v1/scenes", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 204 and "Access-Control-Allow-Origin" not in refused.headers


# --- ProxyFix ------------------------------------------------------------------------


def test_forwarded_headers_are_ignored_unless_behind_a_proxy(client):
    body = client.get("/api/v1/scenes", headers={"X-Forwarded-For": "203.0.113.9"},
                      environ_base={"REMOTE_ADDR": "198.51.100.7"}).get_json()
    assert body["headers"]["X-Forwarded-For"] == "198.51.100.7"


def test_behind_a_proxy_the_client_address_and_scheme_come_from_it(upstreams, monkeypatch):
    monkeypatch.setenv("GATEWAY_BEHIND_PROXY", "1")
    monkeypatch.setenv("GATEWAY_PROXY_HOPS", "1")
    client = create_app().test_client()
    body = client.get("/api/v1/scenes", headers={"X-Forwarded-For": "10.9.9.9, 203.0.113.9",
                                                 "X-Forwarded-Proto": "https"},
                      environ_base={"REMOTE_ADDR": "198.51.100.7"}).get_json()
    # one trusted hop: the last address it appended is the client; the earlier one is the client's claim
    assert body["headers"]["X-Forwarded-For"] == "203.0.113.9"
    assert body["headers"]["X-Forwarded-Proto"] == "https"
