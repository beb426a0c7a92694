"""``GET /api/v1/openapi.json`` (the merged document) and ``/docs``, a page listing every
operation and schema of it, rendered on the server with the gateway's own stylesheet (no
CDN, no script: venues' networks can be closed)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template

from ..openapi import HTTP_METHODS, MergedDocument, scope_note

blp = Blueprint("apidocs", __name__, template_folder="templates", static_folder="static",
                static_url_path="/docs/static")


def _document() -> dict:
    merged: MergedDocument = current_app.extensions["openapi"]
    return merged.get()


def type_label(schema: dict | None) -> str:
    """A short human reading of a schema: ``string``, ``Scene``, ``Item[]``, ``one of a, b``."""
    if not schema:
        return ""
    if schema.get("nullable"):  # an object that may be null is allOf its schema, nullable
        return type_label({k: v for k, v in schema.items() if k != "nullable"}) + " | null"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[1]
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if schema.get("type") == "array":
        return type_label(schema.get("items")) + "[]"
    for combinator in ("oneOf", "anyOf", "allOf"):
        if combinator in schema:
            return " | ".join(type_label(s) for s in schema[combinator])
    label = schema.get("type", "object")
    return f"{label} ({schema['format']})" if "format" in schema else label


def _body_label(request_body: dict | None) -> str:
    if not request_body:
        return ""
    content = request_body.get("content", {})
    return ", ".join(f"{media}: {type_label(entry.get('schema'))}" for media, entry in content.items())


def _response_description(document: dict, response: dict) -> str:
    """A response's description, following a ``$ref`` to a shared response."""
    if "$ref" in response:
        section, _, name = response["$ref"].rpartition("/")
        if section == "#/components/responses":
            response = document.get("components", {}).get("responses", {}).get(name, {})
            return response.get("description") or name
    return response.get("description", "")


def operations_by_tag(document: dict) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {tag["name"]: [] for tag in document.get("tags", [])}
    for path, item in document.get("paths", {}).items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
            grouped.setdefault((operation.get("tags") or ["other"])[0], []).append({
                "id": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
                "method": method.upper(),
                "path": path,
                "summary": operation.get("summary", ""),
                # the page shows the scope on a line of its own
                "description": operation.get("description", "").replace(
                    scope_note(operation.get("x-required-scope", "")), "").strip(),
                "scope": operation.get("x-required-scope"),
                "parameters": [{"name": p["name"], "in": p.get("in"), "required": p.get("required", False),
                                "type": type_label(p.get("schema")), "description": p.get("description", "")}
                               for p in parameters if "name" in p],
                "body": _body_label(operation.get("requestBody")),
                "responses": [(code, _response_description(document, response))
                              for code, response in operation.get("responses", {}).items()],
            })
    return {tag: ops for tag, ops in grouped.items() if ops}


def schema_rows(document: dict) -> list[dict]:
    rows = []
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        required = set(schema.get("required", []))
        rows.append({"name": name, "description": schema.get("description", ""),
                     "properties": [{"name": prop, "type": type_label(spec), "required": prop in required,
                                     "read_only": spec.get("readOnly", False),
                                     "description": spec.get("description", "")}
                                    for prop, spec in schema.get("properties", {}).items()]})
    return rows


@blp.get("/api/v1/openapi.json")
def openapi_json():
    return jsonify(_document())


@blp.get("/docs")
def docs():
    document = _document()
    return render_template("apidocs/docs.html", document=document, groups=operations_by_tag(document),
                           tags={t["name"]: t.get("description", "") for t in document.get("tags", [])},
                           schemas=schema_rows(document))
