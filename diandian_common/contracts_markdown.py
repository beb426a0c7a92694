"""The "Messages" part of docs/contract.md, written from the contracts (docs/contract_doc.py
puts it in the document; ``python -m diandian_common.contracts_markdown`` prints it)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .contract_fields import Visible
from .contracts import CONTRACTS

_TYPES = {fields.String: "string", fields.Integer: "integer", fields.Boolean: "boolean",
          fields.Nested: "object", fields.List: "array", fields.Url: "absolute URL string",
          fields.Date: "ISO-8601 date string"}


def _constraints(field: fields.Field) -> list[str]:
    notes = []
    for rule in field.validators:
        if isinstance(rule, validate.Length) and (rule.min, rule.max) != (None, None):
            unit = "items" if isinstance(field, fields.List) else "characters"
            if rule.min and rule.max is not None:
                notes.append(f"{rule.min}–{rule.max} {unit}")
            elif rule.max is not None:
                notes.append(f"at most {rule.max} {unit}")
            else:
                notes.append(f"at least {rule.min} {unit}")
        elif isinstance(rule, validate.Range):
            notes.append(f"≥ {rule.min}")
        elif isinstance(rule, validate.Regexp):
            notes.append(f"matches `{rule.regex.pattern}`")
        elif isinstance(rule, Visible):
            notes.append("not blank")
    return notes


def _field_rows(schema: Schema, prefix: str = "") -> list[str]:
    rows = []
    for name, field in schema.fields.items():
        kind = getattr(field, "doc", None) or _TYPES[type(field)]
        kind = ", ".join([kind, *_constraints(field)]) + (", or null" if field.allow_none else "")
        if field.required:
            required = "yes"
        else:
            default = field.load_default
            required = f"no (default `{'null' if default is None else str(default).lower()}`)"
        note = field.metadata.get("description", "")
        rows.append(f"| `{prefix}{name}` | {kind} | {required} | {note} |")
        if isinstance(field, fields.Nested):
            rows += _field_rows(field.schema, f"{prefix}{name}.")
        elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            rows += _field_rows(field.inner.schema, f"{prefix}{name}[].")
    return rows


def messages_markdown() -> str:
    """Every contract, grouped by the queue that consumes it (generated; do not edit the output)."""
    lines = []
    for queue in ("orders", "certificates", "ranking", "calculator"):
        mine = [c for c in CONTRACTS.values() if c.task_name.split(".", 1)[0] == queue]
        lines += [f"### Queue `{queue}`", ""]
        for c in (c for c in mine if not c.periodic):
            lines += [f"#### `{c.task_name}`", "", f"Sent by {c.sent_by}. The {queue} worker {c.does}.", "",
                      "| Field | Type | Required | Notes |", "|---|---|---|---|",
                      "| `v` | integer | yes | 1 |", *_field_rows(c.schema()), ""]
        periodic = [c for c in mine if c.periodic]
        if periodic:
            lines += ["Periodic, sent by the service's beat scheduler with the payload `{\"v\": 1}` "
                      "or with no argument at all:", ""]
            lines += [f"- `{c.task_name}`: {c.does}." for c in periodic] + [""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - prints the generated "Messages" section
    print(messages_markdown(), end="")
