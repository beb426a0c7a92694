"""The gateway in the real stack (`make run`'s processes): operator keys end to end, and
one OpenAPI document covering every service."""
from __future__ import annotations

import uuid

import pytest

from tests.stack import OPERATOR_KEY

pytestmark = pytest.mark.integration


def scene_body() -> dict:
    return {"slug": f"e2e-{uuid.uuid4().hex[:8]}", "name": "网关测试 Gateway test", "type": "conference",
            "location": "Chengdu", "starts_on": "2030-05-01", "ends_on": "2030-05-02"}


def test_an_operator_creates_a_scene_through_the_gateway(driver):
    body = scene_body()
    created = driver.api("POST", "/api/v1/scenes", json=body, headers={"X-API-Key": OPERATOR_KEY})
    assert created.status_code == 201, created.text
    assert created.json()["slug"] == body["slug"]
    assert driver.api("GET", f"/api/v1/scenes/{body['slug']}").status_code == 200

    wrong = driver.api("POST", "/api/v1/scenes", json=scene_body(), headers={"X-API-Key": "not-a-key"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
    missing = driver.api("POST", "/api/v1/scenes", json=scene_body())
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"


def test_a_client_cannot_reach_a_service_with_a_forged_assertion(driver):
    forged = driver.api("POST", "/api/v1/scenes", json=scene_body(),
                       headers={"X-Diandian-Operator": "forged.assertion.value"})
    assert forged.status_code == 401  # dropped by the gateway: no operator at all


def test_the_merged_openapi_lists_every_service(driver):
    response = driver.api("GET", "/api/v1/openapi.json")
    assert response.status_code == 200, response.text
    document = response.json()
    assert "x-unavailable-services" not in document
    paths = document["paths"]
    for path in ("/api/v1/scenes", "/api/v1/estimates", "/api/v1/projects", "/api/v1/orders",
                 "/api/v1/certificates/{certificate_id}", "/api/v1/certificates/verify/{code}",
                 "/api/v1/rankings"):
        assert path in paths, path
    assert {tag["name"] for tag in document["tags"]} >= {"calculator", "orders", "certificates", "ranking"}
    assert paths["/api/v1/scenes"]["post"]["x-required-scope"] == "scenes"
    docs = driver.api("GET", "/docs")
    assert docs.status_code == 200 and "/api/v1/rankings" in docs.text
    assert docs.headers["Content-Security-Policy"].startswith("default-src 'self'")
