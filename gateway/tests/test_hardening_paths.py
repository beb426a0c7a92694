"""One reading of an API path (issue #17): a path that the gateway would classify one way
and the service route another (dot segments, encoded delimiters, double encoding, empty
segments, backslashes, control characters) is a 400 before anything reads it; every other
path reaches the service exactly as the gateway classified it. Raw request targets are set
as gunicorn sets them (``RAW_URI``, and ``PATH_INFO`` percent-decoded as latin-1)."""
from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diandian_common.testing import free_port, migrated_sqlite_url
from gateway import participants
from gateway.app import create_app
from gateway.routes import OWNERS, owner_of, required_scope


@pytest.fixture
def client(gateway_env):
    return create_app().test_client()


def raw_request(client, method: str, target: str, **kwargs):
    """``method target`` with ``target`` exactly as a client put it on the request line."""
    path = urlsplit(target).path if "://" in target else target.split("?", 1)[0]
    query = urlsplit(target).query if "?" in target else ""
    environ = {"RAW_URI": target, "REQUEST_URI": target, "QUERY_STRING": query,
               "PATH_INFO": unquote(path, encoding="latin-1")}
    return client.open("/", method=method, environ_overrides=environ, **kwargs)


HOSTILE = [
    ("POST", "/api/v1/ledger/../orders"),              # counted as a write, created an order
    ("POST", "/api/v1/orders/X/payment%3F"),           # counted as a write, paid an order
    ("POST", "/api/v1/ledger/%2e%2e/orders"),
    ("POST", "/api/v1/ledger/%2E%2e/orders"),
    ("POST", "/api/v1/ledger/%252e%252e/orders"),      # decoded once: %2e%2e, re-quoted: ..
    ("POST", "/api/v1/orders/./o1/payment"),
    ("POST", "/api/v1/orders/o1/payment/."),
    ("GET", "/api/v1/scenes%2fforum"),
    ("GET", "/api/v1/scenes%2Fforum"),
    ("GET", "/api/v1/scenes/forum%5cposter.pdf"),
    ("GET", "/api/v1/scenes/forum\\poster.pdf"),
    ("GET", "/api/v1/orders/o1%23fragment"),
    ("GET", "/api/v1/orders/o1#fragment"),
    ("GET", "/api/v1/orders/o1%00"),
    ("GET", "/api/v1/orders/o1%0d%0aX-Injected:%201"),
    ("GET", "/api/v1/orders/o1%7f"),
    ("GET", "/api/v1/orders/o1%c2%85"),                 # U+0085, a C1 control character
    ("GET", "/api/v1/orders/o1\x01"),
    ("GET", "/api/v1/orders/%zz"),
    ("GET", "/api/v1/orders/o1%"),
    ("GET", "/api/v1//orders"),
    ("GET", "//api/v1/orders"),
    ("GET", "/api/v1/orders//o1"),
    ("GET", "/api/v1/orders/o1%3F?x=1"),
    ("POST", "http://localhost/api/v1/ledger/../orders"),  # absolute-form request target
]


@pytest.mark.parametrize("method, target", HOSTILE)
def test_paths_read_two_ways_are_refused_before_reaching_a_service(client, method, target):
    response = raw_request(client, method, target, json={})
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "invalid_path" and error["message"].startswith("the path")
    assert "service" not in response.get_json()  # the stand-in service echoes what it got
    assert response.headers["X-Request-ID"]  # an answer of the gateway like any other


def test_without_a_raw_target_the_decoded_path_is_checked(client):
    """A server that keeps no raw form: PATH_INFO (already decoded) is all there is."""
    for path_info in ("/api/v1/ledger/../orders", "/api/v1/orders/o1?", "/api/v1/orders/%2e%2e"):
        response = client.open("/", method="POST", json={}, environ_overrides={
            "RAW_URI": None, "REQUEST_URI": None, "PATH_INFO": path_info})
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_path"


@pytest.mark.parametrize("method, target, service, path", [
    ("GET", "/api/v1/certificates/verify/CODE.sig", "certificates", "/api/v1/certificates/verify/CODE.sig"),
    ("GET", "/api/v1/scenes/forum/poster.pdf?x=../..", "calculator", "/api/v1/scenes/forum/poster.pdf"),
    ("GET", "/api/v1/rankings/participants/%E6%9D%8E%20%E9%9B%B7", "ranking", "/api/v1/rankings/participants/李 雷"),
    ("GET", "/api/v1/orders/%41bc", "orders", "/api/v1/orders/Abc"),
    ("GET", "/%61pi/v1/orders/o1", "orders", "/api/v1/orders/o1"),
    ("POST", "/api/v1/orders/o1/payment", "orders", "/api/v1/orders/o1/payment"),
])
def test_ordinary_paths_pass_and_reach_the_service_as_classified(client, method, target, service, path):
    response = raw_request(client, method, target, json={})
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    assert response.get_json()["service"] == service and response.get_json()["path"] == path


def test_pages_are_not_api_paths(client):
    """The check is the API's: a page's own routing is Flask's (no forwarding by path)."""
    assert raw_request(client, "GET", "/static/../app.py").status_code == 404


# Pieces of raw paths: plain and percent-encoded characters, delimiters, dots.
PIECES = st.sampled_from([
    "a", "Z", "0", "-", "_", "~", ".", "..", "/", "//", "%2e", "%2E", "%2f", "%5c", "%3f", "%23", "%25",
    "%41", "%20", "%E4%B8%AD", "%c2%85", "%00", "%0a", "%zz", "%", ";", ":", "@", "+", ",", "=", "!", "$",
    "&", "'", "(", ")", "*", "\\", "pdf", "payment", "orders",
])


@pytest.fixture(scope="module")
def module_client(upstreams, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        for name, upstream in upstreams.items():
            patch.setenv(f"{name.upper()}_URL", upstream.url)
        patch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
        patch.setenv("GATEWAY_DATABASE_URL", migrated_sqlite_url("gateway", tmp_path_factory.mktemp("gw")))
        patch.setenv("RATE_LIMIT_ENABLED", "false")
        yield create_app().test_client()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.sampled_from(sorted(OWNERS)), rest=st.lists(PIECES, max_size=8))
def test_a_path_is_refused_or_forwarded_exactly_as_classified(module_client, first, rest):
    raw = f"/api/v1/{first}" + "".join(rest)
    response = raw_request(module_client, "GET", raw)
    if response.status_code == 400:
        assert response.get_json()["error"]["code"] == "invalid_path"
        return
    decoded = unquote(raw, errors="replace")
    if owner_of(decoded) is None:  # the first segment became another word: no such API
        assert response.status_code == 404
        return
    if required_scope("GET", decoded):  # an operator route: no key, no forwarding
        assert response.status_code == 401
        return
    assert response.status_code == 200, (raw, response.get_data(as_text=True))
    body = response.get_json()
    assert (body["service"], body["path"]) == (owner_of(decoded), decoded)


@pytest.fixture
def limited_client(upstreams, redis_url, tmp_path, monkeypatch):
    for name, upstream in upstreams.items():
        monkeypatch.setenv(f"{name.upper()}_URL", upstream.url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("RATE_LIMIT_STORAGE_URL", raising=False)
    monkeypatch.delenv("RATE_LIMIT_ENABLED", raising=False)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", migrated_sqlite_url("gateway", tmp_path))
    monkeypatch.setenv("RATE_LIMIT_ORDERS", "2/minute")
    monkeypatch.setenv("RATE_LIMIT_WRITES", "2/minute")
    redis.Redis.from_url(redis_url).flushall()
    client = create_app().test_client()
    client.set_cookie(participants.COOKIE_NAME, participants._serializer().dumps("p_guest"))
    return client


def test_the_check_comes_before_the_limiter(limited_client):
    """Refused paths never reach the limiter's categories: they were "writes" (120/min)
    that created and paid orders; now they count nowhere, and orders keep their budget."""
    for _ in range(3):
        assert raw_request(limited_client, "POST", "/api/v1/ledger/../orders", json={}).status_code == 400
        assert raw_request(limited_client, "POST", "/api/v1/orders/X/payment%3F", json={}).status_code == 400
    assert [limited_client.post("/api/v1/orders", json={}).status_code for _ in range(3)] == [201, 201, 429]
