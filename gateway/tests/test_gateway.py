"""Gateway routing, failure modes and health, against real HTTP upstreams in threads."""
from __future__ import annotations

import threading

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from diandian_common.testing import free_port
from gateway.app import create_app
from gateway.routes import owner_of


class Upstream:
    """A tiny service on a real port that echoes what it received."""

    def __init__(self, name: str, healthy: bool = True):
        app = Flask(name)

        @app.route("/api/v1/<path:rest>", methods=["GET", "POST"])
        def echo(rest):
            return jsonify({"service": name, "path": request.path, "query": request.query_string.decode(),
                            "body": request.get_data(as_text=True),
                            "request_id": request.headers.get("X-Request-ID")}), 201 if request.method == "POST" else 200

        @app.get("/healthz")
        def healthz():
            return jsonify({"status": "ok" if healthy else "error",
                            "checks": {"database": "ok" if healthy else "error: OperationalError"}}), \
                200 if healthy else 503

        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def upstreams(monkeypatch):
    running = {"calculator": Upstream("calculator"), "orders": Upstream("orders"),
               "certificates": Upstream("certificates", healthy=False)}
    for name, upstream in running.items():
        monkeypatch.setenv(f"{name.upper()}_URL", upstream.url)
    monkeypatch.setenv("RANKING_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    yield running
    for upstream in running.values():
        upstream.stop()


@pytest.fixture
def client(upstreams):
    return create_app().test_client()


@pytest.mark.parametrize("path, owner", [
    ("/api/v1/scenes", "calculator"), ("/api/v1/scenes/x/qr.png", "calculator"),
    ("/api/v1/estimates/e1", "calculator"), ("/api/v1/projects", "orders"), ("/api/v1/orders/o/payment", "orders"),
    ("/api/v1/ledger", "orders"), ("/api/v1/certificates/verify/c", "certificates"),
    ("/api/v1/rankings/participants/p", "ranking"), ("/api/v1/unknown", None), ("/healthz", None),
])
def test_every_public_path_has_one_owner(path, owner):
    assert owner_of(path) == owner


def test_forwards_method_path_query_body_and_request_id(client):
    response = client.post("/api/v1/orders?x=1", data='{"a": 1}', content_type="application/json",
                           headers={"X-Request-ID": "req-123"})
    assert response.status_code == 201
    body = response.get_json()
    assert body == {"service": "orders", "path": "/api/v1/orders", "query": "x=1", "body": '{"a": 1}',
                    "request_id": "req-123"}
    assert response.headers["X-Request-ID"] == "req-123"


def test_makes_a_request_id_when_absent(client):
    response = client.get("/api/v1/scenes")
    assert response.get_json()["request_id"] == response.headers["X-Request-ID"]
    assert len(response.headers["X-Request-ID"]) >= 16


def test_a_down_service_is_503_naming_it_while_others_work(client):
    down = client.get("/api/v1/rankings")
    assert down.status_code == 503
    assert down.get_json()["error"]["code"] == "service_unavailable"
    assert "ranking" in down.get_json()["error"]["message"]
    assert client.get("/api/v1/scenes").status_code == 200


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
