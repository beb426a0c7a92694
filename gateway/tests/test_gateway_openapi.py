"""The merged OpenAPI document and the /docs page."""
from __future__ import annotations

import importlib
import re

import pytest

from diandian_common.testing import free_port, migrated_sqlite_url
from gateway.app import create_app
from gateway.openapi import merge
from gateway.testing import Upstream

SERVICES = ("calculator", "orders", "certificates", "ranking")


def ref(name: str, section: str = "schemas") -> dict:
    return {"$ref": f"#/components/{section}/{name}"}


def doc(service: str, paths: dict, schemas: dict) -> dict:
    return {"openapi": "3.0.3", "info": {"title": service, "version": "v1"},
            "tags": [{"name": service, "description": f"the {service} service"}],
            "paths": paths, "components": {"schemas": schemas}}


def all_refs(node) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(all_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(all_refs(v) for v in node))
    return set()


def resolves(document: dict, reference: str) -> bool:
    _, _, section, name = reference.split("/", 3)
    return name in document["components"].get(section, {})


ERROR = {"type": "object", "properties": {"code": {"type": "string"}}}


def test_components_are_shared_when_identical_and_renamed_when_not():
    calculator = doc("calculator", {
        "/api/v1/scenes": {"get": {"responses": {
            "200": {"content": {"application/json": {"schema": ref("Scene")}}}}},
                           "post": {"security": [{"ApiKeyAuth": []}], "responses": {"201": {}}}},
    }, {"Error": ERROR, "Scene": {"type": "object", "properties": {"slug": {"type": "string"}}},
        "Wrapper": {"type": "object", "properties": {"item": ref("Scene")}}})
    certificates = doc("certificates", {
        "/api/v1/certificates/{certificate_id}": {"get": {"responses": {
            "200": {"content": {"application/json": {"schema": ref("Wrapper")}}}}}},
        "/api/v1/certificates/{certificate_id}/revoke": {"post": {"responses": {"200": {}}}},
        "/api/v1/scenes/stolen": {"get": {"responses": {"200": {}}}},  # not this service's path
    }, {"Error": ERROR, "Scene": {"type": "string"},
        "Wrapper": {"type": "object", "properties": {"item": ref("Scene")}}})
    merged = merge({"calculator": calculator, "certificates": certificates}, "https://dd.example")

    schemas = merged["components"]["schemas"]
    assert set(schemas) == {"Error", "Scene", "Wrapper", "CertificatesScene", "CertificatesWrapper"}
    # Wrapper is textually the same in both, but the certificates' one means its own Scene
    assert schemas["CertificatesWrapper"]["properties"]["item"] == ref("CertificatesScene")
    assert schemas["Wrapper"]["properties"]["item"] == ref("Scene")
    cert_get = merged["paths"]["/api/v1/certificates/{certificate_id}"]["get"]
    assert cert_get["responses"]["200"]["content"]["application/json"]["schema"] == ref("CertificatesWrapper")
    assert "/api/v1/scenes/stolen" not in merged["paths"]
    assert merged["servers"] == [{"url": "https://dd.example"}]
    assert [t["name"] for t in merged["tags"]] == ["calculator", "certificates"]
    assert all(resolves(merged, r) for r in all_refs(merged))


def test_security_follows_the_gateways_route_table():
    calculator = doc("calculator", {
        "/api/v1/scenes": {"get": {"responses": {}}, "post": {"responses": {}}},
        "/api/v1/factors/drafts": {"get": {"security": [{"ApiKeyAuth": []}], "responses": {}}},
    }, {})
    certificates = doc("certificates", {
        "/api/v1/certificates/{certificate_id}/revoke": {"post": {"responses": {}}}}, {})
    merged = merge({"calculator": calculator, "certificates": certificates}, "http://x")
    scenes = merged["paths"]["/api/v1/scenes"]
    assert "security" not in scenes["get"]
    # guarded by the gateway, whether or not the service said so
    assert scenes["post"]["security"] == [{"ApiKeyAuth": []}]
    assert scenes["post"]["x-required-scope"] == "scenes"
    assert {"401", "403", "429"} <= set(scenes["post"]["responses"])
    assert "429" in scenes["get"]["responses"] and "401" not in scenes["get"]["responses"]
    revoke = merged["paths"]["/api/v1/certificates/{certificate_id}/revoke"]["post"]
    assert revoke["x-required-scope"] == "admin"
    # a service-guarded route the table lacks: only admin keys reach it
    assert merged["paths"]["/api/v1/factors/drafts"]["get"]["x-required-scope"] == "admin"
    assert merged["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": merged["components"]["securitySchemes"]["ApiKeyAuth"]["description"]}


@pytest.fixture(scope="module")
def service_documents(tmp_path_factory) -> dict[str, dict]:
    """The four real services' own documents."""
    documents = {}
    for service in SERVICES:
        app = importlib.import_module(f"{service}.app").create_app(
            database_url=f"sqlite:///{tmp_path_factory.mktemp(service)}/{service}.db")
        documents[service] = app.test_client().get("/openapi.json").get_json()
    return documents


def test_the_real_services_documents_merge_without_losses(service_documents):
    merged = merge(service_documents, "http://x")
    for service, document in service_documents.items():
        assert set(document["paths"]) <= set(merged["paths"]), f"{service} lost paths"
        for name in document["components"]["schemas"]:
            kept_as = {name, service.capitalize() + name} & set(merged["components"]["schemas"])
            assert kept_as, f"{service}.{name} lost"
    assert all(resolves(merged, r) for r in all_refs(merged)), "dangling $ref"
    schemas = merged["components"]["schemas"]
    # one error shape everywhere: kept once
    assert not any(name.endswith("Error") and name != "Error" for name in schemas)
    # the certificates' own idea of a project differs from the orders' one: both survive
    assert schemas["Project"] == service_documents["orders"]["components"]["schemas"]["Project"]
    certificates_project = service_documents["certificates"]["components"]["schemas"]["Project"]
    assert schemas["CertificatesProject"] == certificates_project
    assert merged["paths"]["/api/v1/scenes"]["post"]["x-required-scope"] == "scenes"
    assert merged["paths"]["/api/v1/orders"]["get"]["x-required-scope"] == "projects"
    assert "security" not in merged["paths"]["/api/v1/orders"]["post"]


@pytest.fixture
def gateway(service_documents, tmp_path, monkeypatch):
    running = {s: Upstream(s, openapi=service_documents[s]) for s in SERVICES}
    for name, upstream in running.items():
        monkeypatch.setenv(f"{name.upper()}_URL", upstream.url)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", migrated_sqlite_url("gateway", tmp_path))
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://diandian.example")
    yield running
    for upstream in running.values():
        upstream.stop()


def test_the_gateway_serves_the_merged_document_and_caches_it(gateway):
    client = create_app().test_client()
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    owners = {path.split("/")[3] for path in document["paths"]}
    assert {"scenes", "estimates", "projects", "orders", "certificates", "rankings"} <= owners
    assert document["servers"] == [{"url": "https://diandian.example"}]
    assert "x-unavailable-services" not in document
    gateway["ranking"].stop()  # cached: still complete
    assert "/api/v1/rankings" in client.get("/api/v1/openapi.json").get_json()["paths"]


def test_a_down_service_is_named_and_the_rest_still_documented(gateway, monkeypatch):
    monkeypatch.setenv("RANKING_URL", f"http://127.0.0.1:{free_port()}")
    document = create_app().test_client().get("/api/v1/openapi.json").get_json()
    assert document["x-unavailable-services"] == ["ranking"]
    assert "/api/v1/scenes" in document["paths"] and "/api/v1/rankings" not in document["paths"]
    for service in SERVICES:
        monkeypatch.setenv(f"{service.upper()}_URL", f"http://127.0.0.1:{free_port()}")
    none = create_app().test_client().get("/api/v1/openapi.json")
    assert none.status_code == 503 and none.get_json()["error"]["code"] == "service_unavailable"


def test_the_docs_page_lists_every_operation_without_a_cdn(gateway):
    client = create_app().test_client()
    document = client.get("/api/v1/openapi.json").get_json()
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for path, item in document["paths"].items():
        assert f"<code>{path}</code>" in html
    assert "scope <strong>admin</strong>" in html  # certificate revocation
    assert 'id="schema-CertificatesProject"' in html or 'id="schema-CertificatesScene"' in html
    # everything it loads comes from the gateway itself, and nothing inline (CSP)
    loaded = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert loaded and all(url.startswith("/") for url in loaded), loaded
    assert "<script" not in html and "<style" not in html and "style=" not in html
    css = client.get("/docs/static/apidocs.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
