"""The published API describes itself (issue #17): the merged OpenAPI document, built from the
four services' own documents as the gateway merges them, says what a client must send and
what it gets back, so that a generated client (tests/test_generated_client.py) and a fuzzer
(tests/test_hostile_api.py) meet the API as it is.

No processes: each service's app answers its /openapi.json in-process, and the request
validation the document must agree with is the services' own schemas'.
"""
from __future__ import annotations

import importlib
import logging

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

from diandian_common.errors import error_body
from gateway.openapi import HTTP_METHODS, LINKS, merge

SERVICES = ("calculator", "orders", "certificates", "ranking")
ERROR_REF = "#/components/schemas/Error"


@pytest.fixture(scope="module")
def apps(tmp_path_factory) -> dict:
    return {service: importlib.import_module(f"{service}.app").create_app(
        database_url=f"sqlite:///{tmp_path_factory.mktemp(service)}/{service}.db") for service in SERVICES}


@pytest.fixture(scope="module")
def document(apps) -> dict:
    logging.disable(logging.INFO)  # the apps log their /openapi.json request
    try:
        documents = {service: app.test_client().get("/openapi.json").get_json()
                     for service, app in apps.items()}
    finally:
        logging.disable(logging.NOTSET)
    return merge(documents, "http://diandian.test")


def operations(document: dict):
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method, path, item[method]


def resolved(document: dict, node: dict) -> dict:
    """``node`` with its ``$ref`` (a component of the document) followed."""
    while "$ref" in node:
        _, _, section, name = node["$ref"].split("/", 3)
        node = document["components"][section][name]
    return node


def validator(document: dict, schema: dict) -> OAS30Validator:
    """A validator of ``schema`` whose references resolve in ``document``."""
    return OAS30Validator({**schema, "components": document["components"]})


def test_the_document_is_valid_openapi_with_an_operation_id_each(document):
    validate_spec(document)
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids)), "operationIds must be unique: generated clients name functions by them"


# --- 1. every header the API requires is declared ------------------------------------------

def test_placing_an_order_declares_its_required_idempotency_key(document):
    from orders.ordering.domain.idempotency import MAX_KEY_LENGTH

    parameters = document["paths"]["/api/v1/orders"]["post"].get("parameters", [])
    header = next((p for p in parameters if p["in"] == "header" and p["name"] == "Idempotency-Key"), None)
    assert header is not None, "POST /api/v1/orders must declare its Idempotency-Key header"
    assert header["required"] is True
    assert (header["schema"]["minLength"], header["schema"]["maxLength"]) == (1, MAX_KEY_LENGTH)


def test_a_provider_webhook_declares_its_signature_header(document):
    operation = document["paths"]["/api/v1/payments/{provider}/webhook"]["post"]
    assert {(p["in"], p["name"], p["required"]) for p in operation["parameters"]} >= {
        ("header", "Payment-Signature", True)}


def test_operator_routes_need_the_declared_key(document):
    scheme = document["components"]["securitySchemes"]["ApiKeyAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    guarded = [(m, p) for m, p, operation in operations(document) if operation.get("x-required-scope")]
    assert len(guarded) > 10
    for method, path, operation in operations(document):
        if operation.get("x-required-scope"):
            assert operation["security"] == [{"ApiKeyAuth": []}], (method, path)


# --- 2. nullable objects keep their type ---------------------------------------------------

def nullable_nested(node, where=""):
    """Every property that refers to a schema and may be null, as (where, its schema)."""
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            if prop.get("nullable") or "anyOf" in prop:
                yield f"{where}.{name}", prop
        for key, value in node.items():
            yield from nullable_nested(value, f"{where}/{key}")


def test_a_nested_object_that_may_be_null_is_its_schema_or_null(document):
    schemas = document["components"]["schemas"]
    assert schemas["Order"]["properties"]["retirement"] == {
        "allOf": [{"$ref": "#/components/schemas/Retirement"}], "nullable": True}
    for name in ("certificate", "scene", "refund"):
        assert schemas["Order"]["properties"][name]["nullable"] is True
        assert len(schemas["Order"]["properties"][name]["allOf"]) == 1
    for where, prop in nullable_nested(schemas):
        # A free-form object among the alternatives is what made generated clients drop the type.
        assert "anyOf" not in prop, f"{where}: {prop}"
        if "allOf" in prop:
            assert [set(part) for part in prop["allOf"]] == [{"$ref"}], f"{where}: {prop}"


# --- 3. every error answer is typed ----------------------------------------------------------

def test_every_error_answer_has_the_error_body(document):
    untyped = []
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if status != "default" and int(status) < 400:
                continue
            response = resolved(document, response)
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema is None or (schema.get("$ref") != ERROR_REF
                                  and resolved(document, schema).get("properties", {}).get("error") is None):
                untyped.append(f"{method.upper()} {path} {status}")
    assert not untyped, untyped


@pytest.mark.parametrize("status", ["401", "404", "429", "503"])
def test_what_every_operation_can_answer_is_documented(document, status):
    for method, path, operation in operations(document):
        if status == "401" and not operation.get("x-required-scope"):
            continue
        if status == "404" and "{" not in path:
            continue
        assert status in operation["responses"], f"{method.upper()} {path} lacks {status}"
    for method, path, operation in operations(document):
        if "requestBody" in operation:
            assert "400" in operation["responses"], f"{method.upper()} {path}: invalid_json"
        if operation.get("x-required-scope"):
            assert "403" in operation["responses"], f"{method.upper()} {path}"


def test_the_error_schema_is_the_shape_errors_py_writes(document):
    check = validator(document, {"$ref": ERROR_REF})
    check.validate(error_body(422, "validation_error", "some fields are invalid",
                              {"activities": {"0": {"period": ["only life estimates take a period"]}}}))
    check.validate(error_body(404, "not_found", "order x not found"))
    assert not check.is_valid({"error": {"code": "x"}}), "message is required"


def test_an_unknown_verification_code_answers_its_documented_body(apps, document):
    answer = apps["certificates"].test_client().get("/api/v1/certificates/verify/not-a-code")
    assert answer.status_code == 404
    documented = document["paths"]["/api/v1/certificates/verify/{code}"]["get"]["responses"]["404"]
    schema = resolved(document, documented)["content"]["application/json"]["schema"]
    validator(document, schema).validate(answer.get_json())
    assert not validator(document, schema).is_valid({"valid": True, **error_body(404, "not_found", "x")})


def test_a_validation_error_answers_its_documented_body(apps, document):
    answer = apps["calculator"].test_client().post("/api/v1/estimates", json={"kind": "trip", "activities": [
        {"type": "rail"}]})
    assert answer.status_code == 422
    documented = document["paths"]["/api/v1/estimates"]["post"]["responses"]["422"]
    validator(document, resolved(document, documented)["content"]["application/json"]["schema"]).validate(
        answer.get_json())
    assert answer.get_json()["error"]["fields"]


# --- 4. which fields each activity type requires -------------------------------------------

# A valid value of every activity field, to build the smallest activity of each variant.
VALID = {"from": "PEK", "to": "SHA", "distance_km": 120.5, "cabin": "business", "round_trip": True,
         "passengers": 2, "class": "conventional", "fuel": "diesel", "nights": 2, "rooms": 1, "country": "JP",
         "kwh": 300, "m3": 20, "count": 3, "diet": "vegetarian", "period": "month", "party_size": 2,
         "province": "CN-SC"}


def variants(document: dict) -> list[dict]:
    """Every concrete variant of Activity (a variant that is itself oneOf is opened)."""
    found, pending = [], list(document["components"]["schemas"]["Activity"]["oneOf"])
    while pending:
        schema = resolved(document, pending.pop(0))
        if "oneOf" in schema:
            pending += schema["oneOf"]
        else:
            found.append(schema)
    return found


def test_activities_are_one_of_a_variant_per_type(document):
    from calculator.domain.calculator import ACTIVITY_TYPES

    activity = document["components"]["schemas"]["Activity"]
    assert activity["discriminator"]["propertyName"] == "type"
    assert set(activity["discriminator"]["mapping"]) == set(ACTIVITY_TYPES)
    types = [v["properties"]["type"]["enum"] for v in variants(document)]
    assert all(len(t) == 1 for t in types) and {t[0] for t in types} == set(ACTIVITY_TYPES)
    for variant in variants(document):
        assert "type" in variant["required"] and variant["additionalProperties"] is False


def test_each_variant_is_what_the_api_accepts(document):
    """The documented variants and ActivitySchema's validation agree: a variant's required
    fields are enough and each is needed, its optional fields are accepted, and a field it
    does not list is refused."""
    from calculator.schemas import ActivitySchema

    def errors(activity: dict) -> dict:
        return ActivitySchema().validate(activity)

    every_field = set(VALID)
    for variant in variants(document):
        activity_type = variant["properties"]["type"]["enum"][0]
        smallest = {"type": activity_type,
                    **{name: VALID[name] for name in variant["required"] if name != "type"}}
        assert errors(smallest) == {}, (variant, errors(smallest))
        for name in set(variant["required"]) - {"type"}:
            # refused (a flight without its distance is told it lacks a route: either is needed)
            assert errors({k: v for k, v in smallest.items() if k != name}) != {}, (activity_type, name)
        for name in set(variant["properties"]) - set(variant["required"]):
            assert errors({**smallest, name: VALID[name]}) == {}, (activity_type, name)
        for name in every_field - set(variant["properties"]):
            assert errors({**smallest, name: VALID[name]}) != {}, (activity_type, name)


# --- 6. links: what one answer gives the next request ---------------------------------------

def pointer_exists(document: dict, schema: dict, pointer: str) -> bool:
    """Whether the JSON pointer can exist in an instance of ``schema``."""
    for part in pointer.strip("/").split("/"):
        schema = resolved(document, schema)
        if "allOf" in schema:
            schema = resolved(document, schema["allOf"][0])
        if part.isdigit():
            schema = schema.get("items")
        else:
            schema = schema.get("properties", {}).get(part)
        if schema is None:
            return False
    return True


def test_every_link_names_an_operation_its_parameters_and_fields_that_exist(document):
    by_id = {op["operationId"]: (path, op) for _, path, op in operations(document)}
    assert {source for source, _ in LINKS} <= set(by_id)
    links = 0
    for _, path, operation in operations(document):
        for status, response in operation["responses"].items():
            body = resolved(document, response).get("content", {}).get("application/json", {}).get("schema")
            for name, link in response.get("links", {}).items():
                links += 1
                target_path, target = by_id[link["operationId"]]
                names = {p["name"] for p in document["paths"][target_path].get("parameters", [])
                         + target.get("parameters", [])}
                assert set(link.get("parameters", {})) <= names, (path, name)
                expressions = [*link.get("parameters", {}).values(), *link.get("requestBody", {}).values()]
                for expression in expressions:
                    assert pointer_exists(document, body, expression.removeprefix("$response.body#")), (
                        path, status, name, expression)
                if "requestBody" in link:
                    body_schema = target["requestBody"]["content"]["application/json"]["schema"]
                    assert set(link["requestBody"]) <= set(resolved(document, body_schema)["properties"]), (
                        path, name)
    assert links >= sum(len(named) for named in LINKS.values())
    order_links = document["paths"]["/api/v1/orders"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in order_links.values()} >= {
        "get_order_resource", "post_order_payment"}
