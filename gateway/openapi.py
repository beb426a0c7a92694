"""One OpenAPI document for the whole public API, merged from the services' own.

Each service describes its routes at ``/openapi.json`` (flask-smorest). The gateway
merges them: the paths each service owns (docs/contract.md §2), their components (a component that
is identical everywhere is kept once; one that differs, or refers to one that differs,
is renamed after its service, e.g. ``CertificatesProject``), the operator key as security
scheme on exactly the routes the gateway guards with the scope each needs, and 429 on
every operation. The result is cached for ``GATEWAY_OPENAPI_CACHE_SECONDS``; while a
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

from .proxy import Upstreams
from .routes import owner_of, required_scope

log = logging.getLogger(__name__)

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SECURITY_SCHEME = "ApiKeyAuth"  # the services' name for it, so theirs merge into this one
RATE_LIMITED_RESPONSE = "RATE_LIMITED"
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
    if scope:
        operation["security"] = [{SECURITY_SCHEME: []}]
        operation["x-required-scope"] = scope
        described = operation.get("description", "").strip()
        operation["description"] = f"{described}\n\n{scope_note(scope)}".strip()
        responses = operation.setdefault("responses", {})
        error = ({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                 if has_error_schema else {})
        responses.setdefault("401", {"description": "No operator key", **error})
        responses.setdefault("403", {"description": "Unknown or revoked key, or a key without the scope",
                                     **error})
    else:
        operation.pop("security", None)
    operation.setdefault("responses", {}).setdefault(
        "429", {"$ref": f"#/components/responses/{RATE_LIMITED_RESPONSE}"})


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
    has_error_schema = "Error" in components.get("schemas", {})
    for path, item in paths.items():
        for method in HTTP_METHODS:
            if method in item:
                _guard(item[method], method, path, has_error_schema)
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "apiKey", "in": "header", "name": API_KEY_HEADER,
        "description": "An operator key (`flask --app gateway.app keys create`); "
                       "scopes: scenes, projects, admin."}
    components.setdefault("responses", {})[RATE_LIMITED_RESPONSE] = {
        "description": "Too many requests",
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
        **({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
           if has_error_schema else {}),
    }
    merged = {
        "openapi": max(versions) if versions else "3.0.3",
        "info": {"title": "Diandian public API", "version": "v1",
                 "description": "Every public route of the platform, served by the gateway. Errors are "
                                "`{\"error\": {\"code\", \"message\", \"fields\"}}`."},
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
