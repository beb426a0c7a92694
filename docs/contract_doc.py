"""Writes the generated parts of docs/contract.md; ``--check`` fails when they are stale.

    .venv/bin/python docs/contract_doc.py           # rewrite docs/contract.md in place
    .venv/bin/python docs/contract_doc.py --check   # exit 1 if it is out of date

The document is hand-written prose with two generated blocks between markers:

- "messages": every task's payload, from ``diandian_common.contracts``;
- "http": every public route, from the services' own OpenAPI documents merged the way
  the gateway merges them (``gateway.openapi.merge``).

Everything outside the markers is kept as written. tests/test_architecture.py runs the
check, so a change of a message contract or of a route's schema fails the tests until the
document is regenerated.
"""
from __future__ import annotations

import importlib
import json
import logging
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "contract.md"
SERVICES = ("calculator", "orders", "certificates", "ranking")
METHODS = ("get", "post", "put", "patch", "delete")
BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- end generated: \2 -->)", re.S)


def _service_documents() -> dict[str, dict]:
    """Each service's OpenAPI document, as it serves it at ``/openapi.json``."""
    for path in (ROOT, ROOT / "services"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    documents = {}
    for service in SERVICES:
        app = importlib.import_module(f"{service}.app").create_app(database_url="sqlite://")
        documents[service] = app.test_client().get("/openapi.json").get_json()
    return documents


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _anchor(name: str) -> str:
    return f"schema-{name.lower()}"


def _type(schema: dict) -> str:
    """A JSON schema in a few words: ``string (date-time)``, ``array of [Scene](#…)``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{_anchor(name)})"
    for combinator in ("allOf", "oneOf", "anyOf"):
        if combinator in schema:
            return " or ".join(_type(part) for part in schema[combinator])
    kind = schema.get("type", "any")
    if kind == "array":
        text = f"array of {_type(schema.get('items', {}))}"
    elif kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        text = f"object of {_type(schema['additionalProperties'])}"
    else:
        text = kind
    details = []
    if "format" in schema:
        details.append(schema["format"])
    if "enum" in schema:
        details.append("one of " + ", ".join(f"`{value}`" for value in schema["enum"]))
    for key, word in (("minLength", "min length"), ("maxLength", "max length"), ("minimum", "≥"),
                      ("maximum", "≤"), ("minItems", "min items"), ("maxItems", "max items"),
                      ("pattern", "pattern")):
        if key in schema:
            details.append(f"{word} `{schema[key]}`" if key == "pattern" else f"{word} {schema[key]}")
    if details:
        text += f" ({'; '.join(details)})"
    if schema.get("nullable"):
        text += ", or null"
    return text


def _schema_table(schema: dict) -> list[str]:
    if "properties" not in schema:
        return [f"{_type(schema)}", ""]
    required = set(schema.get("required", []))
    rows = ["| Field | Type | Required | Notes |", "|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        notes = [prop.get("description", "")]
        if "default" in prop:
            notes.append(f"default `{json.dumps(prop['default'], ensure_ascii=False)}`")
        if prop.get("readOnly"):
            notes.append("read-only")
        if prop.get("writeOnly"):
            notes.append("write-only")
        rows.append(f"| `{name}` | {_cell(_type(prop))} | {'yes' if name in required else 'no'} | "
                    f"{_cell('; '.join(n for n in notes if n))} |")
    return rows + [""]


def _content(body: dict) -> str:
    """``application/json`` [Schema](#…), one per media type."""
    parts = []
    for media, content in body.get("content", {}).items():
        schema = content.get("schema")
        parts.append(f"`{media}`" + (f" {_type(schema)}" if schema else ""))
    return ", ".join(parts)


def _operation(path: str, method: str, operation: dict, path_parameters: list, responses: dict) -> list[str]:
    lines = [f"#### `{method.upper()} {path}`", ""]
    summary = " ".join(part for part in (operation.get("summary", ""), operation.get("description", "")) if part)
    if summary.strip():
        lines += [summary.strip(), ""]
    parameters = path_parameters + operation.get("parameters", [])
    if parameters:
        lines += ["| Parameter | In | Type | Required | Notes |", "|---|---|---|---|---|"]
        for p in parameters:
            lines.append(f"| `{p['name']}` | {p['in']} | {_cell(_type(p.get('schema', {})))} | "
                         f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description', ''))} |")
        lines.append("")
    if "requestBody" in operation:
        body = operation["requestBody"]
        lines += [f"Request body{' (required)' if body.get('required') else ''}: {_content(body)}", ""]
    lines += ["| Status | Meaning | Body |", "|---|---|---|"]
    answers = operation.get("responses", {})
    for status in sorted(answers, key=lambda code: (code == "default", code)):
        response = answers[status]
        if "$ref" in response:
            response = responses[response["$ref"].rsplit("/", 1)[1]]
        lines.append(f"| {status} | {_cell(response.get('description', ''))} | {_cell(_content(response))} |")
    return lines + [""]


def http_markdown(document: dict) -> str:
    """Every route of the merged document, grouped by tag, then every schema it names."""
    components = document.get("components", {})
    responses = components.get("responses", {})
    by_tag: dict[str, list[str]] = {tag["name"]: [] for tag in document.get("tags", [])}
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                tag = (operation.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).extend(
                    _operation(path, method, operation, item.get("parameters", []), responses))
    descriptions = {tag["name"]: tag.get("description", "") for tag in document.get("tags", [])}
    lines = []
    for tag, operations in by_tag.items():
        if operations:
            lines += [f"### {tag}", ""]
            if descriptions.get(tag):
                lines += [_cell(descriptions[tag]), ""]
            lines += operations
    lines += ["### Schemas", ""]
    for name, schema in components.get("schemas", {}).items():
        lines += [f'<a id="{_anchor(name)}"></a>', f"#### {name}", ""]
        if schema.get("description"):
            lines += [_cell(schema["description"]), ""]
        lines += _schema_table(schema)
    return "\n".join(lines).rstrip("\n") + "\n"


def generated_blocks() -> dict[str, str]:
    from diandian_common.contracts_markdown import messages_markdown
    from gateway.openapi import merge

    logging.disable(logging.INFO)  # the apps log their /openapi.json request
    try:
        merged = merge(_service_documents(), public_base_url="")
    finally:
        logging.disable(logging.NOTSET)
    return {"messages": messages_markdown().rstrip("\n") + "\n", "http": http_markdown(merged)}


def render(text: str, blocks: dict[str, str]) -> str:
    """``text`` with every generated block replaced by its current content."""
    seen = set()

    def replace(match: re.Match) -> str:
        seen.add(match.group(2))
        return f"{match.group(1)}\n{blocks[match.group(2)]}\n{match.group(4)}"

    result = BLOCK.sub(replace, text)
    missing = set(blocks) - seen
    if missing:
        raise ValueError(f"{DOCUMENT} lacks the markers of {sorted(missing)}")
    return result


def main(argv: list[str]) -> int:
    current = DOCUMENT.read_text(encoding="utf-8")
    wanted = render(current, generated_blocks())
    if "--check" in argv:
        if wanted != current:
            print(f"{DOCUMENT.relative_to(ROOT)} is out of date: run .venv/bin/python docs/contract_doc.py",
                  file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
