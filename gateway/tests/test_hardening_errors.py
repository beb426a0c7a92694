"""Every error of the API is the platform's JSON error shape (issue #17): Werkzeug's routing
redirect (308), 405, 413, and the gateway's own 414 and 431, which apply below gunicorn's
limits; in the gateway and in a real service. Gunicorn's own refusals past its limits are
HTML it writes itself: the last tests pin where that begins, over real HTTP."""
from __future__ import annotations

import http.client
import os
import subprocess
import sys

import pytest

from diandian_common.testing import free_port, migrated_sqlite_url, stop_process, wait_for
from gateway.app import create_app
from gateway.security import MAX_HEADER_BYTES, MAX_URL_BYTES


@pytest.fixture
def client(gateway_env):
    return create_app().test_client()


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    return error


# --- the gateway ---------------------------------------------------------------------------


@pytest.mark.parametrize("path, location", [
    ("/operator//scenes", "/operator/scenes"),
    ("/static//app.js?v=1", "/static/app.js?v=1"),
    ("//operator//scenes", "/operator/scenes"),
])
def test_a_routing_redirect_is_json_with_a_relative_location(client, path, location):
    target = path.split("?", 1)
    response = client.get("/", environ_overrides={
        "RAW_URI": path, "REQUEST_URI": path, "PATH_INFO": target[0],
        "QUERY_STRING": target[1] if len(target) > 1 else ""}, headers={"Host": "evil.example"})
    error = assert_error(response, 308, "permanent_redirect")
    assert response.headers["Location"] == location and location in error["message"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # the other hooks still ran


def test_an_api_path_with_doubled_slashes_is_refused_not_redirected(client):
    assert_error(client.get("/api/v1//scenes"), 400, "invalid_path")


def test_a_method_not_allowed_is_json_with_allow(client):
    error = assert_error(client.open("/api/v1/scenes", method="TRACE"), 405, "method_not_allowed")
    assert error["message"]
    response = client.post("/healthz")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_a_body_too_large_is_json(client):
    response = client.post("/api/v1/orders", data=b"x" * (1024 * 1024 + 1), content_type="application/json")
    assert_error(response, 413, "payload_too_large")


def test_a_url_too_long_is_json_414(client):
    assert client.get("/api/v1/scenes?q=" + "x" * (MAX_URL_BYTES - 100)).status_code == 200
    error = assert_error(client.get("/api/v1/scenes?q=" + "x" * MAX_URL_BYTES), 414, "uri_too_long")
    assert str(MAX_URL_BYTES) in error["message"]
    assert_error(client.get("/api/v1/" + "a" * MAX_URL_BYTES), 414, "uri_too_long")


def test_header_fields_too_large_are_json_431(client):
    fine = {f"X-Pad-{n}": "x" * 1000 for n in range(MAX_HEADER_BYTES // 1100)}
    assert client.get("/api/v1/scenes", headers=fine).status_code == 200
    large = {f"X-Pad-{n}": "x" * 4000 for n in range(MAX_HEADER_BYTES // 4000 + 1)}
    error = assert_error(client.get("/api/v1/scenes", headers=large), 431, "request_header_fields_too_large")
    assert str(MAX_HEADER_BYTES) in error["message"]
    cookie = {"Cookie": "dd_lang=zh; " + "; ".join(f"c{n}={'x' * 4000}" for n in range(5))}
    browser = client.application.test_client(use_cookies=False)  # sends the header as it is
    assert_error(browser.get("/", headers=cookie), 431, "request_header_fields_too_large")


def test_the_size_limits_come_from_the_environment(gateway_env):
    gateway_env.setenv("GATEWAY_MAX_URL_BYTES", "100")
    gateway_env.setenv("GATEWAY_MAX_HEADER_BYTES", "300")
    client = create_app().test_client()
    assert_error(client.get("/api/v1/scenes?q=" + "x" * 100), 414, "uri_too_long")
    assert_error(client.get("/api/v1/scenes", headers={"X-Pad": "x" * 300}), 431,
                 "request_header_fields_too_large")
    gateway_env.setenv("GATEWAY_MAX_URL_BYTES", "0")
    with pytest.raises(ValueError):
        create_app()


# --- a real service ------------------------------------------------------------------------


@pytest.fixture
def calculator(tmp_path, monkeypatch):
    from calculator.app import create_app as create_calculator_app

    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://diandian.example")
    monkeypatch.delenv("CALCULATOR_FACTOR_SET", raising=False)
    return create_calculator_app(migrated_sqlite_url("calculator", tmp_path)).test_client()


def test_a_services_routing_redirect_405_and_413_are_json(calculator):
    redirected = calculator.get("/api/v1//scenes?x=1", headers={"Host": "evil.example"})
    assert_error(redirected, 308, "permanent_redirect")
    assert redirected.headers["Location"] == "/api/v1/scenes?x=1"  # relative: the gateway passes it on
    assert_error(calculator.put("/api/v1/scenes", json={}), 405, "method_not_allowed")
    too_large = calculator.post("/api/v1/estimates", data=b"[" * (1024 * 1024 + 1),
                                content_type="application/json")
    assert_error(too_large, 413, "payload_too_large")


# --- under gunicorn, over real HTTP -----------------------------------------------------------


@pytest.fixture(scope="module")
def gunicorn_gateway(tmp_path_factory):
    """The gateway as the Procfile and the image serve it: gunicorn with its default limits."""
    directory = tmp_path_factory.mktemp("gunicorn-gateway")
    port = free_port()
    env = {**os.environ, "GATEWAY_DATABASE_URL": migrated_sqlite_url("gateway", directory),
           "VAR_DIR": str(directory / "var"), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
           "RATE_LIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING"}
    for service in ("CALCULATOR", "ORDERS", "CERTIFICATES", "RANKING"):
        env[f"{service}_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens
    log = (directory / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "gateway.app:create_app()"], env=env, stdout=log, stderr=subprocess.STDOUT)

    def answers():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/api/v1/openapi.json/x")
            return connection.getresponse().status
        finally:
            connection.close()

    try:
        wait_for(answers, timeout=60, what="the gateway under gunicorn", retry_on=(OSError,),
                 on_timeout=lambda: (directory / "gunicorn.log").read_text()[-2000:])
        yield port
    finally:
        stop_process(process)
        log.close()


def over_http(port: int, method: str, target: str, headers: dict | None = None) -> tuple[int, str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode("latin-1")
    finally:
        connection.close()


def test_gunicorn_gives_the_raw_path_to_the_guard(gunicorn_gateway):
    for target in ("/api/v1/ledger/../orders", "/api/v1/orders/X/payment%3F", "/api/v1//orders",
                   "/api/v1/ledger/%2e%2e/orders"):
        status, content_type, body = over_http(gunicorn_gateway, "POST", target, {"Content-Length": "0"})
        assert (status, content_type) == (400, "application/json"), (target, body)
        assert '"invalid_path"' in body


def test_under_gunicorn_the_json_limits_apply_first(gunicorn_gateway):
    status, content_type, body = over_http(gunicorn_gateway, "GET", "/api/v1/scenes?q=" + "x" * MAX_URL_BYTES)
    assert (status, content_type) == (414, "application/json") and '"uri_too_long"' in body
    pad = {f"X-Pad-{n}": "x" * 4000 for n in range(MAX_HEADER_BYTES // 4000 + 1)}
    status, content_type, body = over_http(gunicorn_gateway, "GET", "/api/v1/scenes", pad)
    assert (status, content_type) == (431, "application/json") and '"request_header_fields_too_large"' in body


def test_past_gunicorns_own_limits_its_answer_is_html(gunicorn_gateway):
    """Gunicorn refuses a request line over 4094 bytes or a header field over 8190 before any
    application code runs, with an HTML page it writes itself (gunicorn.util.write_error):
    the one place an error is not JSON."""
    status, content_type, _ = over_http(gunicorn_gateway, "GET", "/api/v1/scenes?q=" + "x" * 5000)
    assert (status, content_type) == (414, "text/html")
    status, content_type, _ = over_http(gunicorn_gateway, "GET", "/api/v1/scenes", {"X-Pad": "x" * 9000})
    assert (status, content_type) == (431, "text/html")
