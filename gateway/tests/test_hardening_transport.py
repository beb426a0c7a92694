"""What the gateway trusts about how a request reached it (issue #17): Strict-Transport-Security
only over https, X-Forwarded-* only as far as configured, and only the configured hosts."""
from __future__ import annotations

import pytest

from gateway.app import create_app

HSTS = "max-age=31536000; includeSubDomains"


def client_with(env, **variables):
    for name, value in variables.items():
        env.setenv(name, value)
    return create_app().test_client()


# --- Strict-Transport-Security -----------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/scenes", "/healthz", "/operator/login", "/no-such-page"])
def test_hsts_over_https_only(gateway_env, path):
    client = client_with(gateway_env)
    assert client.get(path, base_url="https://diandian.example").headers["Strict-Transport-Security"] == HSTS
    assert "Strict-Transport-Security" not in client.get(path, base_url="http://diandian.example").headers


def test_hsts_behind_a_proxy_follows_the_forwarded_scheme(gateway_env):
    client = client_with(gateway_env, GATEWAY_BEHIND_PROXY="1")
    https = client.get("/api/v1/scenes", headers={"X-Forwarded-Proto": "https"})
    assert https.headers["Strict-Transport-Security"] == HSTS
    assert "Strict-Transport-Security" not in client.get("/api/v1/scenes").headers


def test_a_forwarded_scheme_is_not_believed_without_a_proxy(gateway_env):
    response = client_with(gateway_env).get("/api/v1/scenes", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response.headers


def test_hsts_max_age_is_configurable_and_zero_is_off(gateway_env):
    client = client_with(gateway_env, GATEWAY_HSTS_MAX_AGE="600")
    assert client.get("/healthz", base_url="https://x.example").headers["Strict-Transport-Security"] == \
        "max-age=600; includeSubDomains"
    client = client_with(gateway_env, GATEWAY_HSTS_MAX_AGE="0")
    assert "Strict-Transport-Security" not in client.get("/healthz", base_url="https://x.example").headers
    gateway_env.setenv("GATEWAY_HSTS_MAX_AGE", "-1")
    with pytest.raises(ValueError):
        create_app()


# --- X-Forwarded-* as far as configured ---------------------------------------------------


def test_behind_a_proxy_only_address_and_scheme_are_believed_by_default(gateway_env):
    client = client_with(gateway_env, GATEWAY_BEHIND_PROXY="1")
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
              "X-Forwarded-Host": "evil.example", "X-Forwarded-Port": "8443", "X-Forwarded-Prefix": "//evil.example"}
    echoed = client.get("/api/v1/scenes", headers=forged).get_json()["headers"]
    assert (echoed["X-Forwarded-For"], echoed["X-Forwarded-Proto"]) == ("203.0.113.9", "https")
    assert echoed["X-Forwarded-Host"] == "localhost"  # what the gateway itself saw
    for path, target in (("/operator", "/operator/scenes"), ("/operator/scenes", "/operator/login")):
        location = client.get(path, headers=forged).headers["Location"]
        assert location.startswith(target) and "evil" not in location


def test_host_port_and_prefix_are_believed_when_configured(gateway_env):
    client = client_with(gateway_env, GATEWAY_BEHIND_PROXY="1",
                         GATEWAY_TRUST_FORWARDED="for, proto, host, port, prefix")
    headers = {"X-Forwarded-Host": "diandian.example", "X-Forwarded-Proto": "https",
               "X-Forwarded-Port": "443", "X-Forwarded-Prefix": "/carbon"}
    assert client.get("/operator", headers=headers).headers["Location"] == "/carbon/operator/scenes"
    assert client.get("/api/v1/scenes", headers=headers).get_json()["headers"]["X-Forwarded-Host"] == \
        "diandian.example"


@pytest.mark.parametrize("prefix", ["//evil.example", "/\\evil.example", "/carbon/../..", "/a//b",
                                    "https://evil.example", "/%2e%2e", "/carbon/./x"])
def test_a_trusted_prefix_that_is_not_a_plain_path_is_refused(gateway_env, prefix):
    client = client_with(gateway_env, GATEWAY_BEHIND_PROXY="1", GATEWAY_TRUST_FORWARDED="for,proto,prefix")
    for path in ("/operator", "/api/v1/scenes"):
        response = client.get(path, headers={"X-Forwarded-Prefix": prefix})
        assert response.status_code == 400, (prefix, response.headers.get("Location"))
        assert response.get_json()["error"]["code"] == "invalid_forwarded_prefix"
        assert "Location" not in response.headers


def test_trusted_forwarded_headers_are_checked_at_start(gateway_env):
    gateway_env.setenv("GATEWAY_TRUST_FORWARDED", "for,proto,hots")
    with pytest.raises(ValueError, match="hots"):
        create_app()


# --- the configured hosts ------------------------------------------------------------------


def test_only_the_allowed_hosts_are_served(gateway_env):
    client = client_with(gateway_env, GATEWAY_ALLOWED_HOSTS="diandian.example, .venue.example")
    for host in ("diandian.example", "diandian.example:8443", "wifi.venue.example", "DIANDIAN.example"):
        assert client.get("/api/v1/scenes", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "diandian.example.evil.example", "venue.example.evil", "localhost"):
        for path in ("/api/v1/scenes", "/operator", "/", "/api/v1//x"):
            response = client.get(path, headers={"Host": host})
            assert response.status_code == 400, (host, path)
            assert response.get_json()["error"]["code"] == "invalid_host"
            assert "Location" not in response.headers
    # monitoring reaches health and metrics by the pod's address
    assert client.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code in (200, 503)
    assert client.get("/metrics", headers={"Host": "10.1.2.3:8000"}).status_code == 200


def test_a_trusted_forwarded_host_must_be_allowed_too(gateway_env):
    client = client_with(gateway_env, GATEWAY_ALLOWED_HOSTS="diandian.example", GATEWAY_BEHIND_PROXY="1",
                         GATEWAY_TRUST_FORWARDED="for,proto,host")
    ok = {"Host": "internal:8000", "X-Forwarded-Host": "diandian.example"}
    assert client.get("/api/v1/scenes", headers=ok).status_code == 200
    forged = {"Host": "internal:8000", "X-Forwarded-Host": "evil.example"}
    assert client.get("/operator", headers=forged).status_code == 400


@pytest.mark.parametrize("host", ["evil.example/x", "a b", "evil.example@x", "[::1", "x:99999", "\u4e2d.example"])
def test_a_host_header_that_is_no_host_name_is_refused(gateway_env, host):
    response = client_with(gateway_env).get("/operator", headers={"Host": host})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_host"


def test_pages_reach_the_api_in_process_on_an_allowed_host(gateway_env):
    """The operator pages call this gateway's API in-process: on the page's own host."""
    from gateway.pages_operator import through_gateway

    app = client_with(gateway_env, GATEWAY_ALLOWED_HOSTS="diandian.example").application
    _, key = app.extensions["keys"].create("pages", ["projects"])
    operator = app.extensions["keys"].authenticate(key)
    with app.test_request_context("/operator/scenes/forum", base_url="https://diandian.example"):
        status, body = through_gateway("GET", "/api/v1/orders", operator, params={"scene": "forum"})
    assert status == 200 and body["path"] == "/api/v1/orders" and body["query"] == "scene=forum"
    assert body["headers"]["X-Forwarded-Proto"] == "https"


@pytest.mark.parametrize("location, kept", [
    ("//evil.example/x", "/evil.example/x"), ("/\\evil.example/x", "/evil.example/x"),
    ("\\\\evil.example", "/evil.example"), (" //evil.example", "/evil.example"),
    ("/\t/evil.example", "/evil.example"), ("/operator/scenes", "/operator/scenes"),
    ("https://diandian.example/c/1", "https://diandian.example/c/1"),
])
def test_a_redirect_never_leaves_the_site_by_a_protocol_relative_location(location, kept):
    from gateway.security import same_site_location
    assert same_site_location(location) == kept
