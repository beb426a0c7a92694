"""Operator API keys: the hashed store, the CLI, the gateway's scope checks at the HTTP
level, and the operator assertion the services accept (diandian_common.auth)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import Flask, jsonify
from sqlalchemy import create_engine, text

from diandian_common import auth
from diandian_common.auth import Operator, operator_required, read_operator_assertion, sign_operator_assertion
from diandian_common.errors import register_error_handlers
from diandian_common.testing import free_port, migrated_sqlite_url
from gateway.app import create_app
from gateway.testing import Upstream

ROOT = Path(__file__).resolve().parents[2]
ENV_OPERATOR_KEY = "env-operator-key-for-tests"


@pytest.fixture
def database_url(tmp_path, monkeypatch):
    url = migrated_sqlite_url("gateway", tmp_path)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", url)
    monkeypatch.setenv("OPERATOR_API_KEY", ENV_OPERATOR_KEY)
    monkeypatch.delenv("OPERATOR_API_KEYS", raising=False)
    monkeypatch.delenv("INTERNAL_API_SECRET", raising=False)
    return url


@pytest.fixture
def upstreams(database_url, monkeypatch):
    running = {s: Upstream(s) for s in ("calculator", "orders", "certificates", "ranking")}
    for name, upstream in running.items():
        monkeypatch.setenv(f"{name.upper()}_URL", upstream.url)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # limits fail open
    yield running
    for upstream in running.values():
        upstream.stop()


@pytest.fixture
def app(upstreams):
    return create_app()


@pytest.fixture
def client(app):
    return app.test_client()


def create_key(app, *scopes: str, name: str = "Venue team") -> str:
    args = ["create", "--name", name]
    for scope in scopes:
        args += ["--scope", scope]
    result = app.test_cli_runner().invoke(args=["keys", *args])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def keys_cli(app, *args: str):
    return app.test_cli_runner().invoke(args=["keys", *args])


# --- the store ------------------------------------------------------------------------


def test_created_keys_are_stored_only_as_hashes(app, database_url):
    raw_key = create_key(app, "scenes", "projects")
    assert raw_key.startswith("dd_") and len(raw_key) > 40
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, name, key_hash, scopes FROM api_keys")).all()
    engine.dispose()
    (key_id, name, key_hash, scopes), = rows
    assert raw_key.startswith(f"dd_{key_id}_")
    assert (name, scopes) == ("Venue team", "projects scenes")
    assert key_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    assert raw_key not in Path(database_url.removeprefix("sqlite:///")).read_bytes().decode(errors="replace")


def test_cli_lists_and_revokes_keys(app):
    raw_key = create_key(app, "admin", name="Ops")
    key_id = raw_key.split("_")[1]
    listed = keys_cli(app, "list")
    assert listed.exit_code == 0
    line, = [line for line in listed.stdout.splitlines() if line.startswith(key_id)]
    assert line.split("\t")[1:3] == ["admin", "active"] and line.endswith("Ops")
    assert raw_key not in listed.stdout
    revoked = keys_cli(app, "revoke", key_id)
    assert revoked.exit_code == 0 and key_id in revoked.stdout
    assert "\trevoked " in keys_cli(app, "list").stdout
    assert keys_cli(app, "revoke", key_id).exit_code == 0  # again: harmless
    missing = keys_cli(app, "revoke", "nope")
    assert missing.exit_code != 0 and "no key with id nope" in missing.output


def test_cli_refuses_unknown_scopes_and_missing_ones(app):
    assert keys_cli(app, "create", "--name", "x", "--scope", "root").exit_code != 0
    assert keys_cli(app, "create", "--name", "x").exit_code != 0
    assert keys_cli(app, "create", "--name", " ", "--scope", "scenes").exit_code != 0


def test_ensure_operator_mirrors_the_environment(app, monkeypatch):
    store = app.extensions["keys"]
    assert store.ensure_operator(ENV_OPERATOR_KEY) == "created"
    assert store.ensure_operator(ENV_OPERATOR_KEY) == "unchanged"
    assert store.authenticate(ENV_OPERATOR_KEY) == Operator("env", frozenset(auth.SCOPES))
    assert store.ensure_operator("a-new-key") == "updated"
    assert store.authenticate(ENV_OPERATOR_KEY) is None
    assert store.ensure_operator(None) == "revoked"
    assert store.authenticate("a-new-key") is None
    assert store.ensure_operator(None) == "absent"
    monkeypatch.setenv("OPERATOR_API_KEY", "from-the-cli")
    result = keys_cli(app, "ensure-operator")
    assert result.exit_code == 0 and "updated" in result.stderr
    assert store.authenticate("from-the-cli").key_id == "env"


def test_the_documented_command_line_creates_a_working_key(database_url):
    env = {**os.environ, "GATEWAY_DATABASE_URL": database_url}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "gateway.app", "keys", "create",
                             "--name", "CI", "--scope", "scenes"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    raw_key = result.stdout.strip()
    assert raw_key.startswith("dd_") and "\n" not in raw_key
    assert "shown only now" in result.stderr
    from diandian_common.db import Database
    from gateway.keys import KeyStore
    database = Database(database_url)
    assert KeyStore(database).authenticate(raw_key).scopes == {"scenes"}
    database.dispose()


# --- at the HTTP level --------------------------------------------------------------


def test_operator_route_without_a_key_is_401(client):
    response = client.post("/api/v1/scenes", json={})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_unknown_key_is_403(client):
    response = client.post("/api/v1/scenes", json={}, headers={"X-API-Key": "dd_00000000_guess"})
    assert response.status_code == 403
    assert response.get_json()["error"] == {"code": "forbidden",
                                            "message": "the API key is not valid (unknown or revoked)"}


def test_key_created_by_the_cli_works_within_its_scopes(app, client):
    raw_key = create_key(app, "scenes")
    created = client.post("/api/v1/scenes", json={"slug": "x"}, headers={"X-API-Key": raw_key})
    assert created.status_code == 201
    seen = created.get_json()
    assert seen["service"] == "calculator"
    # the service saw the operator through the gateway's assertion, never the key itself
    assert seen["operator"] == {"key_id": raw_key.split("_")[1], "scopes": ["scenes"]}
    assert "X-Api-Key" not in seen["headers"]
    for method, path in (("POST", "/api/v1/projects"), ("GET", "/api/v1/orders"),
                         ("GET", "/api/v1/settlements"), ("POST", "/api/v1/certificates/c1/revoke")):
        refused = client.open(path, method=method, json={}, headers={"X-API-Key": raw_key})
        assert refused.status_code == 403, (method, path)
        assert refused.get_json()["error"]["code"] == "insufficient_scope"


def test_admin_implies_every_scope(app, client):
    raw_key = create_key(app, "admin")
    for method, path in (("POST", "/api/v1/scenes"), ("POST", "/api/v1/projects"), ("GET", "/api/v1/orders"),
                         ("POST", "/api/v1/webhooks"), ("POST", "/api/v1/certificates/c1/revoke")):
        response = client.open(path, method=method, json={}, headers={"X-API-Key": raw_key})
        assert response.status_code in (200, 201), (method, path)
        assert response.get_json()["operator"]["scopes"] == ["admin"]


def test_revoked_key_is_403_at_once(app, client):
    raw_key = create_key(app, "projects")
    assert client.get("/api/v1/orders", headers={"X-API-Key": raw_key}).status_code == 200
    assert keys_cli(app, "revoke", raw_key.split("_")[1]).exit_code == 0
    response = client.get("/api/v1/orders", headers={"X-API-Key": raw_key})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"


def test_operator_api_key_works_once_ensured(app, client):
    assert client.post("/api/v1/scenes", json={}, headers={"X-API-Key": ENV_OPERATOR_KEY}).status_code == 403
    assert keys_cli(app, "ensure-operator").exit_code == 0
    response = client.post("/api/v1/certificates/c1/revoke", json={}, headers={"X-API-Key": ENV_OPERATOR_KEY})
    assert response.status_code == 201
    assert response.get_json()["operator"] == {"key_id": "env", "scopes": sorted(auth.SCOPES)}


def test_public_routes_need_no_key_and_pass_no_operator(app, client):
    response = client.get("/api/v1/scenes")
    assert response.status_code == 200 and response.get_json()["operator"] == "unauthorized"
    scenes_key = create_key(app, "scenes")
    with_key = client.post("/api/v1/estimates", json={}, headers={"X-API-Key": scenes_key}).get_json()
    assert with_key["operator"] == "unauthorized" and "X-Api-Key" not in with_key["headers"]


def test_a_client_cannot_send_its_own_operator_assertion(client):
    forged = sign_operator_assertion(Operator("mallory", frozenset({"admin"})), "POST", "/api/v1/estimates")
    seen = client.post("/api/v1/estimates", json={}, headers={"X-Diandian-Operator": forged}).get_json()
    assert "X-Diandian-Operator" not in seen["headers"] and seen["operator"] == "unauthorized"
    refused = client.post("/api/v1/scenes", json={}, headers={"X-Diandian-Operator": forged})
    assert refused.status_code == 401


def test_a_key_store_that_is_down_refuses_operators_but_not_guests(upstreams, tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'never-migrated.db'}")
    client = create_app().test_client()
    refused = client.post("/api/v1/scenes", json={}, headers={"X-API-Key": ENV_OPERATOR_KEY})
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "service_unavailable"
    assert client.get("/api/v1/scenes", headers={"X-API-Key": ENV_OPERATOR_KEY}).status_code == 200


# --- what the services accept (diandian_common.auth) ---------------------------------


@pytest.fixture
def service(monkeypatch):
    monkeypatch.setenv("OPERATOR_API_KEY", "direct-key")
    monkeypatch.setenv("OPERATOR_API_KEYS", "second-key, third-key")
    monkeypatch.delenv("INTERNAL_API_SECRET", raising=False)
    app = Flask("service")
    register_error_handlers(app)

    @app.post("/api/v1/things")
    @operator_required
    def create_thing():
        return jsonify({"ok": True}), 201

    @app.post("/api/v1/things/<thing>/purge")
    @operator_required(scope="admin")
    def purge(thing):
        return jsonify({"purged": thing})

    return app.test_client()


def assertion(scopes, method="POST", path="/api/v1/things", key_id="k1"):
    return sign_operator_assertion(Operator(key_id, frozenset(scopes)), method, path)


def test_services_accept_their_environment_keys_directly(service):
    assert service.post("/api/v1/things").status_code == 401
    assert service.post("/api/v1/things", headers={"X-API-Key": "wrong"}).status_code == 403
    for key in ("direct-key", "second-key", "third-key"):
        assert service.post("/api/v1/things", headers={"X-API-Key": key}).status_code == 201
    assert service.post("/api/v1/things/t/purge", headers={"X-API-Key": "direct-key"}).status_code == 200


def test_services_accept_a_gateway_assertion_for_its_route_only(service):
    headers = {"X-Diandian-Operator": assertion({"scenes"})}
    assert service.post("/api/v1/things", headers=headers).status_code == 201
    other_route = {"X-Diandian-Operator": assertion({"admin"}, path="/api/v1/other")}
    assert service.post("/api/v1/things", headers=other_route).status_code == 403
    other_method = {"X-Diandian-Operator": assertion({"admin"}, method="GET")}
    assert service.post("/api/v1/things", headers=other_method).status_code == 403


def test_services_check_a_views_scope(service):
    path = "/api/v1/things/t/purge"
    narrow = service.post(path, headers={"X-Diandian-Operator": assertion({"scenes", "projects"}, path=path)})
    assert narrow.status_code == 403 and narrow.get_json()["error"]["code"] == "insufficient_scope"
    admin = service.post(path, headers={"X-Diandian-Operator": assertion({"admin"}, path=path)})
    assert admin.status_code == 200


def test_a_forged_or_tampered_assertion_is_refused(service, monkeypatch):
    monkeypatch.setenv("INTERNAL_API_SECRET", "an-attackers-guess")
    forged = assertion({"admin"})
    monkeypatch.setenv("INTERNAL_API_SECRET", "the-real-secret")
    response = service.post("/api/v1/things", headers={"X-Diandian-Operator": forged})
    assert response.status_code == 403 and "assertion" in response.get_json()["error"]["message"]
    genuine = assertion({"scenes"})
    tampered = genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB")
    assert service.post("/api/v1/things", headers={"X-Diandian-Operator": tampered}).status_code == 403
    # an assertion never falls back to a key: a bad one is refused even with a good key
    assert service.post("/api/v1/things", headers={"X-Diandian-Operator": tampered,
                                                   "X-API-Key": "direct-key"}).status_code == 403


def test_assertions_expire(monkeypatch):
    token = assertion({"scenes"})
    assert read_operator_assertion(token, "POST", "/api/v1/things") is not None
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + auth.ASSERTION_MAX_AGE_S + 5)
    assert read_operator_assertion(token, "POST", "/api/v1/things") is None
