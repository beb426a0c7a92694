"""The JSON every API accepts, parsed once with limits before anything else sees it.

Python's ``json`` turns a 5,000-digit number into an int (or fails deep inside with a
ValueError no caller expects) and a ``"\\ud800"`` escape into a string that no database or
encoder accepts: both became 500s. Here a number is at most :data:`MAX_NUMBER_CHARS`
characters, ``NaN``/``Infinity`` are refused, and every string (keys included) must be valid
Unicode. A refused body raises :class:`UnsafeJson`, a ``json.JSONDecodeError``, so every
JSON error path answers 400 ``invalid_json`` with the reason.
"""
from __future__ import annotations

import json
from typing import Any

MAX_NUMBER_CHARS = 40  # far beyond any amount, quantity or distance the platform takes


class UnsafeJson(json.JSONDecodeError):
    """Syntactically JSON, but not something any of the APIs accepts."""

    def __init__(self, reason: str):
        # A non-empty document: webargs reads an error on an empty one as "no body".
        super().__init__(reason, "<request body>", 0)
        self.reason = reason


def _bounded(kind, text: str):
    if len(text) > MAX_NUMBER_CHARS:
        raise UnsafeJson(f"a number longer than {MAX_NUMBER_CHARS} characters")
    return kind(text)


def _no_constant(name: str):
    raise UnsafeJson(f"{name} is not a number JSON allows")


def _check_unicode(value: Any, depth: int = 0) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UnsafeJson("a string holds a lone surrogate (invalid Unicode)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key, depth + 1)
            _check_unicode(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_unicode(item, depth + 1)


def loads(data: str | bytes | bytearray) -> Any:
    """Parse a request body; :class:`UnsafeJson` (or ``json.JSONDecodeError``) when refused."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsafeJson(f"the body is not UTF-8 ({exc.reason})") from None
    value = json.loads(data, parse_int=lambda text: _bounded(int, text),
                       parse_float=lambda text: _bounded(float, text), parse_constant=_no_constant)
    _check_unicode(value)
    return value
