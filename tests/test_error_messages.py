"""Every catalogue of translated error messages (diandian_common.i18n) is sound: each
template's Chinese carries exactly the parameters of its English, each has text of its own
besides its parameters (so it cannot match any message whole), and each Chinese is Chinese."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from diandian_common.i18n import GENERIC, Catalogue, placeholders
from diandian_common.testing import has_chinese

SERVICES = ("calculator", "orders", "certificates", "ranking")
CATALOGUES = {"generic": GENERIC, **{name: importlib.import_module(f"{name}.messages").MESSAGES
                                     for name in (*SERVICES, "gateway")}}


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_every_entry_has_the_parameters_of_its_template(name):
    catalogue: Catalogue = CATALOGUES[name]
    wrong = {english: chinese for english, chinese in catalogue.entries.items()
             if sorted(placeholders(english)) != sorted(placeholders(chinese))}
    assert not wrong, wrong


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_every_template_has_text_of_its_own_and_every_translation_is_chinese(name):
    catalogue: Catalogue = CATALOGUES[name]
    for english, chinese in catalogue.entries.items():
        assert english.format(**{p: "" for p in placeholders(english)}).strip(), english
        assert has_chinese(chinese), (english, chinese)
        assert len(placeholders(english)) == len(set(placeholders(english))), english


def test_a_template_translates_its_own_rendering():
    """Each template, rendered with sample values, is found again and comes out in Chinese
    with the same values (no other template of its catalogue takes its place)."""
    for name, catalogue in CATALOGUES.items():
        full = catalogue + GENERIC
        for english, chinese in catalogue.entries.items():
            values = {p: f"v{n}x" for n, p in enumerate(placeholders(english))}
            assert full.translate(english.format(**values), "zh") == chinese.format(**values), (name, english)


# --- every message raised in the code has its Chinese ----------------------------------------
#
# Read from the source, so a message a new route raises fails here before any request meets
# it: the English of each ApiError, NotFound, ValidationError, validator ``error=`` and
# webhook UnsafeTarget written literally (an f-string's values replaced by samples) must be
# found by the catalogue of the code that raises it. A message built elsewhere (a domain
# rule's, a variable) is checked by the service's battery (tests/test_error_language.py).

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"diandian_common": (ROOT / "diandian_common", "generic"),
           "gateway": (ROOT / "gateway", "gateway"),
           **{name: (ROOT / "services" / name, name) for name in SERVICES}}
MESSAGE_CALLS = {"ApiError": (2, "message"), "ValidationError": (0, "message"), "UnsafeTarget": (0, None),
                 "Refusal": (2, "message")}
FIELDS_ARGUMENT = {"ApiError": (3, "fields")}
VALIDATORS = {"Regexp", "OneOf", "Length", "Range", "Equal", "NoneOf", "ContainsOnly", "ContainsNoneOf",
              "URL", "Email", "Predicate", "And"}
SAMPLE = "v7"


def _rendered(node: ast.AST) -> list[str] | None:
    """The messages a literal expression can be, values replaced by a sample; None when it is
    not literal (a variable, a call)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            else:
                parts.append(repr(SAMPLE) if getattr(value, "conversion", -1) == ord("r") else SAMPLE)
        return ["".join(parts)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _rendered(node.left), _rendered(node.right)
        return None if left is None or right is None else [a + b for a in left for b in right]
    if isinstance(node, ast.IfExp):
        body, orelse = _rendered(node.body), _rendered(node.orelse)
        return None if body is None or orelse is None else body + orelse
    return None


def _messages_in(node: ast.AST) -> list[str]:
    """Every literal message in an argument: a message, or a dict/list of them (the keys of a
    dict are field names, not messages)."""
    if isinstance(node, ast.Dict):
        return [m for value in node.values for m in _messages_in(value)]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [m for element in node.elts for m in _messages_in(element)]
    return _rendered(node) or []


def _argument(call: ast.Call, position: int, keyword: str | None) -> ast.AST | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if keyword and k.arg == keyword), None)


def raised_messages(source: str) -> list[tuple[int, str]]:
    """(line, English) of every literal message raised in ``source``."""
    found = []
    for call in (node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        arguments = [_argument(call, *MESSAGE_CALLS[name])] if name in MESSAGE_CALLS else []
        if name in FIELDS_ARGUMENT:
            arguments.append(_argument(call, *FIELDS_ARGUMENT[name]))
        if name == "NotFound" and len(call.args) == 2 and isinstance(call.args[0], ast.Constant):
            found.append((call.lineno, f"{call.args[0].value} {SAMPLE} not found"))
        for keyword in call.keywords if name in VALIDATORS else ():
            if keyword.arg == "error":  # marshmallow validators format {input}, {choices}…
                found += [(call.lineno, re.sub(r"\{[^{}]*\}", repr(SAMPLE), m))
                          for m in _messages_in(keyword.value)]
        found += [(call.lineno, m) for argument in arguments if argument is not None
                  for m in _messages_in(argument)]
    return found


def _source_files(directory: Path):
    for path in sorted(directory.rglob("*.py")):
        relative = path.relative_to(directory)
        if {"tests", "migrations"} & set(relative.parts) or path.name in ("testing.py", "conftest.py"):
            continue
        yield path


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_message_raised_in_the_code_has_its_chinese(source):
    directory, catalogue_name = SOURCES[source]
    catalogue = CATALOGUES[catalogue_name] + GENERIC
    missing = [f"{path.relative_to(ROOT)}:{line}: {message!r}"
               for path in _source_files(directory)
               for line, message in raised_messages(path.read_text(encoding="utf-8"))
               if catalogue.lookup(message) is None]
    assert len(list(_source_files(directory))) > 3
    assert not missing, ("messages without Chinese; add each to the MESSAGES of its service's messages.py "
                         "(README, Error messages in Chinese):\n" + "\n".join(missing))


def test_the_source_reader_finds_literal_and_formatted_messages():
    source = '''
raise ApiError(422, "validation_error", "some fields are invalid", {"to": [f"unknown code {code!r}"]})
raise NotFound("order", order_id)
raise ValidationError({"a": ["required with b"]})
field = fields.String(validate=validate.OneOf(X, error="not one of {choices}: {input!r}"))
raise ApiError(503, "payment_unavailable", str(exc))
'''
    assert [m for _line, m in raised_messages(source)] == [
        "some fields are invalid", "unknown code 'v7'", "order v7 not found", "required with b",
        "not one of 'v7': 'v7'"]
