"""What the gateway trusts about how a request reached it (issue #17): Strict-Transport-Security
only over https, X-Forwarded-* only as far as configured, and only the configured hosts."""
from __future__ import annotations

import pytest

from diandian_common.testing import free_port, migrated_sqlite_url
from gateway.app import create_app
from gateway.testing import Upstream

HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture(scope="module")
def upstreams():
    running = {s: Upstream(s) for s in ("calculator", "orders", "certificates", "ranking")}
    yield running
    for upstream in running.values():
        upstream.stop()


@pytest.fixture
def gateway_env(upstreams, tmp_path, monkeypatch):
    for name, upstream in upstreams.items():
        monkeypatch.setenv(f"{name.upper()}_URL", upstream.url)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    monkeypatch.setenv("GATEWAY_DATABASE_URL", migrated_sqlite_url("gateway", tmp_path))
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")
    for variable in ("GATEWAY_BEHIND_PROXY", "GATEWAY_PROXY_HOPS", "GATEWAY_HSTS_MAX_AGE",
                     "GATEWAY_TRUST_FORWARDED", "GATEWAY_ALLOWED_HOSTS"):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


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
