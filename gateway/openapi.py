"""One OpenAPI document for the whole public API, merged from the services' own.

Each service describes its routes at ``/openapi.json`` (flask-smorest). The gateway
merges them: the paths each service owns (docs/contract.md §2), their components (a component that
is identical everywhere is kept once; one that differs, or refers to one that differs,
is renamed after its service, e.g. ``CertificatesProject``), the operator key as security
scheme on exactly the routes the gateway guards with the scope each needs, the gateway's own
answers on every operation (400 for a path or host it refuses, 429, 503 while the service is
down), the participant cookie the guests' writes set, and the OpenAPI links between operations
(:data:`LINKS`: what one answer gives the next request, which clients and Schemathesis's
stateful tests follow). The result is cached for ``GATEWAY_OPENAPI_CACHE_SECONDS``; while a
service is down the document lists it under ``x-unavailable-services`` and is kept only
briefly.
"""
from __future__ import annotations

import copy
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from diandian_common import config
from diandian_common.auth import API_KEY_HEADER
from diandian_common.errors import ApiError

from .event_report import OPENAPI_OPERATION as EVENT_REPORT_OPERATION
from .event_report import OPENAPI_PATH as EVENT_REPORT_PATH
from .participants import COOKIE_NAME, JOINING_WRITES
from .proxy import Upstreams
from .routes import owner_of, required_scope
from .share_card import OPENAPI_OPERATION as SHARE_CARD_OPERATION
from .share_card import OPENAPI_PATH as SHARE_CARD_PATH

log = logging.getLogger(__name__)

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SECURITY_SCHEME = "ApiKeyAuth"  # the services' name for it, so theirs merge into this one
RATE_LIMITED_RESPONSE = "RATE_LIMITED"
REFUSED_REQUEST_RESPONSE = "GATEWAY_REFUSED"
UNAVAILABLE_RESPONSE = "SERVICE_UNAVAILABLE"
ERROR_CONTENT = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

# OpenAPI links: (operationId, status) of an answer → {link name: (operationId of the next
# request, {its parameter: where in the answer}, or with "requestBody": {field: where})}.
# The answers' fields named here are the services' schemas'; tests/test_openapi_document.py
# checks that every link names operations, parameters and fields the document has.
LINKS: dict[tuple[str, str], dict[str, tuple[str, dict]]] = {
    ("create_estimate", "201"): {
        "GetEstimate": ("get_estimate", {"estimate_id": "$response.body#/id"}),
        "OrderTheEstimate": ("post_orders", {"requestBody": {"estimate_id": "$response.body#/id"}}),
    },
    ("post_orders", "201"): {
        "GetOrder": ("get_order_resource", {"order_id": "$response.body#/id"}),
        "PayOrder": ("post_order_payment", {"order_id": "$response.body#/id"}),
        "GetProject": ("get_project_resource", {"project_id": "$response.body#/project_id"}),
    },
    ("post_order_payment", "202"): {
        "GetOrder": ("get_order_resource", {"order_id": "$response.body#/id"}),
    },
    ("get_order_resource", "200"): {
        "GetCertificate": ("get_certificate", {"certificate_id": "$response.body#/certificate/id"}),
        "GetCertificatePdf": ("get_certificate_pdf", {"certificate_id": "$response.body#/certificate/id"}),
        "GetStanding": ("participant_standing", {"participant_id": "$response.body#/participant/id"}),
        "GetScene": ("get_scene", {"slug": "$response.body#/scene/slug"}),
    },
    ("get_certificate", "200"): {
        "GetCertificatePreview": ("get_certificate_preview", {"certificate_id": "$response.body#/id"}),
        "GetOrder": ("get_order_resource", {"order_id": "$response.body#/order_id"}),
    },
    ("get_projects", "200"): {
        "GetProject": ("get_project_resource", {"project_id": "$response.body#/items/0/id"}),
        "OrderFromProject": ("post_orders", {"requestBody": {"project_id": "$response.body#/items/0/id"}}),
    },
    ("post_projects", "201"): {
        "GetProject": ("get_project_resource", {"project_id": "$response.body#/id"}),
        "UpdateProject": ("patch_project_resource", {"project_id": "$response.body#/id"}),
        "IssueSerials": ("create_issuance", {"project_id": "$response.body#/id"}),
    },
    ("create_scene", "201"): {
        "GetScene": ("get_scene", {"slug": "$response.body#/slug"}),
        "UpdateScene": ("update_scene", {"slug": "$response.body#/slug"}),
        "ArchiveScene": ("archive_scene", {"slug": "$response.body#/slug"}),
        "GetFootprint": ("scene_footprint", {"slug": "$response.body#/slug"}),
        "GetQr": ("scene_qr", {"slug": "$response.body#/slug"}),
    },
    ("post_owners", "201"): {
        "GetOwner": ("get_owner_resource", {"owner_id": "$response.body#/id"}),
        "UpdateOwner": ("patch_owner_resource", {"owner_id": "$response.body#/id"}),
    },
    ("post_endpoints", "201"): {
        "GetEndpoint": ("get_endpoint", {"endpoint_id": "$response.body#/id"}),
        "UpdateEndpoint": ("patch_endpoint", {"endpoint_id": "$response.body#/id"}),
        "ListDeliveries": ("get_deliveries", {"endpoint_id": "$response.body#/id"}),
        "DeleteEndpoint": ("delete_endpoint", {"endpoint_id": "$response.body#/id"}),
    },
}
PARTIAL_TTL_S = 5.0
FETCH_TIMEOUT = (2.0, 5.0)
_COMPONENT_REF = re.compile(r"#/components/(\w+)/(.+)")


def _references(node) -> set[tuple[str, str]]:
    """Every (section, name) a node refers to with ``$ref``."""
    found = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and (match := _COMPONENT_REF.fullmatch(ref)):
            found.add(match.groups())
        for value in node.values():
            found |= _references(value)
    elif isinstance(node, list):
        for value in node:
            found |= _references(value)
    return found


def _renamed(node, renames: dict[tuple[str, str], str]):
    """A copy of ``node`` whose ``$ref``s follow ``renames``."""
    if isinstance(node, dict):
        out = {key: _renamed(value, renames) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and (match := _COMPONENT_REF.fullmatch(ref)) and match.groups() in renames:
            section, _ = match.groups()
            out["$ref"] = f"#/components/{section}/{renames[match.groups()]}"
        return out
    if isinstance(node, list):
        return [_renamed(value, renames) for value in node]
    return node


def _merge_components(merged: dict, first_seen: dict, service: str, components: dict) -> dict:
    """Add one service's components to ``merged``; returns its renames."""
    own = {(section, name): value
           for section, entries in components.items() for name, value in entries.items()}
    clashing = {key for key, value in own.items()
                if (first_seen[key] != value if key in first_seen else key[1] in merged.get(key[0], {}))}
    # A component equal to one already merged still can't be shared if it refers to one
    # of this service's renamed components: repeat until nothing more must be renamed.
    while True:
        more = {key for key, value in own.items()
                if key not in clashing and key in first_seen and _references(value) & clashing}
        if not more:
            break
        clashing |= more
    renames = {}
    for section, name in clashing:
        candidate, n = f"{service.capitalize()}{name}", 2
        while candidate in merged.get(section, {}) or (section, candidate) in own:
            candidate, n = f"{service.capitalize()}{name}{n}", n + 1
        renames[(section, name)] = candidate
    for key, value in own.items():
        if key in first_seen and key not in clashing:
            continue  # the same component, already merged
        section, name = key
        merged.setdefault(section, {})[renames.get(key, name)] = _renamed(value, renames)
        if key not in clashing:
            first_seen[key] = value
    return renames


def scope_note(scope: str) -> str:
    """What an operator route's description says about its key (for readers of the document)."""
    return f"Needs an operator key (`{API_KEY_HEADER}`) with the `{scope}` scope (admin implies every scope)."


def _guard(operation: dict, method: str, path: str, has_error_schema: bool) -> None:
    """Security and the gateway's own answers, as the gateway enforces them."""
    scope = required_scope(method.upper(), path)
    if scope is None and operation.get("security"):
        scope = "admin"  # an operator route the gateway's table lacks: only admin keys go along
    responses = operation.setdefault("responses", {})
    if scope:
        operation["security"] = [{SECURITY_SCHEME: []}]
        operation["x-required-scope"] = scope
        described = operation.get("description", "").strip()
        operation["description"] = f"{described}\n\n{scope_note(scope)}".strip()
        error = ERROR_CONTENT if has_error_schema else {}
        responses.setdefault("401", {"description": "No operator key", **error})
        responses.setdefault("403", {"description": "Unknown or revoked key, or a key without the scope",
                                     **error})
    else:
        operation.pop("security", None)
    responses.setdefault("400", {"$ref": f"#/components/responses/{REFUSED_REQUEST_RESPONSE}"})
    responses.setdefault("429", {"$ref": f"#/components/responses/{RATE_LIMITED_RESPONSE}"})
    responses.setdefault("503", {"$ref": f"#/components/responses/{UNAVAILABLE_RESPONSE}"})
    if method == "post" and any(pattern.fullmatch(path) for pattern in JOINING_WRITES):
        # The guest's first order or estimate gives the browser its participant: a client keeps
        # the cookie, and the guest's later requests (their order, its payment) carry it.
        for status, response in responses.items():
            if status.startswith("2") and "$ref" not in response:
                response.setdefault("headers", {})["Set-Cookie"] = {
                    "description": f"`{COOKIE_NAME}`, the guest's participant (signed), when the "
                                   "request came without it: send it back on the guest's later requests",
                    "schema": {"type": "string"}}


def _unique_operation_ids(paths: dict, owners: dict[str, str]) -> None:
    """operationIds are per service; one used by two services is prefixed with each's name."""
    seen: dict[str, int] = {}
    operations = [(path, item[method]) for path, item in paths.items()
                  for method in HTTP_METHODS if method in item]
    for _, operation in operations:
        if "operationId" in operation:
            seen[operation["operationId"]] = seen.get(operation["operationId"], 0) + 1
    for path, operation in operations:
        if seen.get(operation.get("operationId"), 0) > 1:
            operation["operationId"] = f"{owners[path]}_{operation['operationId']}"


def _link(target: dict, parameters: dict) -> dict:
    link = {"operationId": target["operationId"]}
    named = {name: where for name, where in parameters.items() if name != "requestBody"}
    if named:
        link["parameters"] = named
    if "requestBody" in parameters:
        link["requestBody"] = parameters["requestBody"]
    return link


def _add_links(paths: dict) -> None:
    """:data:`LINKS` on the answers they start from; a link whose operations are not in the
    document (a service down) is left out."""
    by_id = {item[method]["operationId"]: item[method] for item in paths.values()
             for method in HTTP_METHODS if method in item and "operationId" in item[method]}
    for (source, status), links in LINKS.items():
        response = by_id.get(source, {}).get("responses", {}).get(status)
        if response is None or "$ref" in response:
            continue
        for name, (target, parameters) in links.items():
            if target in by_id:
                response.setdefault("links", {})[name] = _link(by_id[target], parameters)


def merge(documents: dict[str, dict], public_base_url: str, unavailable=()) -> dict:
    """The public document from each service's (``{service: document}``, in a fixed order)."""
    components: dict[str, dict] = {}
    first_seen: dict = {}
    paths: dict[str, dict] = {}
    tags: dict[str, dict] = {}
    versions = set()
    for service, document in documents.items():
        versions.add(document.get("openapi", "3.0.3"))
        renames = _merge_components(components, first_seen, service, document.get("components", {}))
        for tag in document.get("tags", []):
            tags.setdefault(tag["name"], tag)
        for path, item in document.get("paths", {}).items():
            if owner_of(path) != service:
                log.warning("%s documents %s, which the gateway does not route to it; left out",
                            service, path)
                continue
            paths[path] = _renamed(copy.deepcopy(item), renames)
    if "calculator" in documents:
        # The gateway's own route, composed from the calculator's and the orders' answers.
        paths[EVENT_REPORT_PATH] = {"get": copy.deepcopy(EVENT_REPORT_OPERATION)}
    if "certificates" in documents:
        # The gateway's own route, composed from the certificates', calculator's and ranking's answers.
        paths[SHARE_CARD_PATH] = {"get": copy.deepcopy(SHARE_CARD_OPERATION)}
    has_error_schema = "Error" in components.get("schemas", {})
    for path, item in paths.items():
        for method in HTTP_METHODS:
            if method in item:
                _guard(item[method], method, path, has_error_schema)
    _unique_operation_ids(paths, {path: owner_of(path) for path in paths})
    _add_links(paths)
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "apiKey", "in": "header", "name": API_KEY_HEADER,
        "description": "An operator key (`flask --app gateway.app keys create`); "
                       "scopes: scenes, projects, admin."}
    error = ERROR_CONTENT if has_error_schema else {}
    retry_after = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
    components.setdefault("responses", {}).update({
        RATE_LIMITED_RESPONSE: {"description": "Too many requests", "headers": retry_after, **error},
        REFUSED_REQUEST_RESPONSE: {
            "description": "`invalid_path` (a path that could be read two ways) or `invalid_host`: the "
                           "gateway refuses the request before any service reads it", **error},
        UNAVAILABLE_RESPONSE: {
            "description": "`service_unavailable`: the service behind the route (or what it needs) is down; "
                           "the other services keep answering", **error},
    })
    merged = {
        "openapi": max(versions) if versions else "3.0.3",
        "info": {"title": "Diandian public API", "version": "v1",
                 "description": "Every public route of the platform, served by the gateway. Errors are "
                                "`{\"error\": {\"code\", \"message\", \"fields\"}}`. A guest is "
                                f"the browser's `{COOKIE_NAME}` cookie, which their first order or "
                                "estimate sets: a client keeps cookies, and sees and pays its own "
                                "orders with it."},
        "servers": [{"url": public_base_url}],
        "tags": list(tags.values()),
        "paths": dict(sorted(paths.items())),
        "components": {section: dict(sorted(entries.items()))
                       for section, entries in sorted(components.items())},
    }
    if unavailable:
        merged["x-unavailable-services"] = sorted(unavailable)
    return merged


class MergedDocument:
    """The merged document, fetched from the services at most once per ``ttl`` seconds."""

    def __init__(self, upstreams: Upstreams, ttl: float | None = None):
        self.upstreams = upstreams
        self.ttl = config.env_float("GATEWAY_OPENAPI_CACHE_SECONDS", 60.0) if ttl is None else ttl
        self._lock = threading.Lock()
        self._document: dict | None = None
        self._expires = 0.0

    def _fetch(self, service: str) -> dict | None:
        try:
            response = self.upstreams.session.get(f"{self.upstreams.base_urls[service]}/openapi.json",
                                                  timeout=FETCH_TIMEOUT)
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("no OpenAPI document from %s: %s", service, exc)
            return None

    def get(self) -> dict:
        with self._lock:  # one refresh at a time; concurrent callers get its result
            if self._document is not None and time.monotonic() < self._expires:
                return self._document
            services = list(self.upstreams.base_urls)
            with ThreadPoolExecutor(max_workers=len(services)) as pool:
                fetched = dict(zip(services, pool.map(self._fetch, services)))
            documents = {s: d for s, d in fetched.items() if d is not None}
            if not documents:
                raise ApiError(503, "service_unavailable", "no service's API description is available")
            unavailable = [s for s in services if s not in documents]
            self._document = merge(documents, config.public_base_url(), unavailable)
            self._expires = time.monotonic() + (min(self.ttl, PARTIAL_TTL_S) if unavailable else self.ttl)
            return self._document
