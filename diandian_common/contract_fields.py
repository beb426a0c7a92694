"""The field types of the message contracts (contracts.py): what a payload's values may be."""
from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate


class StrOrInt(fields.Field):
    """A project's id or vintage: a string (1 to 100 characters) or an integer."""

    doc = "string (1–100 characters) or integer"

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("must be a string or an integer")
        if isinstance(value, str) and not 1 <= len(value) <= 100:
            raise ValidationError("must be 1 to 100 characters")
        return value


class Timestamp(fields.Field):
    """An ISO-8601 date-time string; one without an offset is UTC."""

    doc = "ISO-8601 date-time string (without an offset: UTC)"

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            if not isinstance(value, str):
                raise ValueError
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError("must be an ISO-8601 date-time string") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Kilograms(fields.Field):
    """Kilograms above 0 with at most three decimals: a number or a numeric string."""

    doc = "number of kg above 0, at most 3 decimals (a numeric string is read too)"

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError("must be a number")
        try:
            kg = Decimal(str(value))
        except InvalidOperation:
            raise ValidationError("must be a number") from None
        if not kg.is_finite():
            raise ValidationError("must be a finite number")
        if kg * 1000 != (kg * 1000).to_integral_value():
            raise ValidationError("has more than three decimals")
        if kg <= 0:
            raise ValidationError("must be above 0")
        return kg


class Flag(fields.Field):
    """true or false, nothing else."""

    doc = "boolean (true or false only)"

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("must be a boolean")
        return value


# Categories that print nothing: separators, control and format characters (zero-width
# spaces and joiners, direction marks), unassigned code points.
INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cn"})


class Visible(validate.Validator):
    """Text with at least one character that prints: a name of spaces, zero-width characters
    or direction marks only would show as nothing on a certificate or a board."""

    def __call__(self, value: str) -> str:
        text = unicodedata.normalize("NFKC", value)
        if not any(not ch.isspace() and unicodedata.category(ch) not in INVISIBLE_CATEGORIES for ch in text):
            raise ValidationError("must not be blank")
        return value


def Id(max_length: int = 64, **kwargs) -> fields.String:  # noqa: N802 - a field factory
    """A required identifier of 1 to ``max_length`` characters."""
    return fields.String(required=True, validate=validate.Length(1, max_length), **kwargs)


def Text(max_length: int | None = None, **kwargs) -> fields.String:  # noqa: N802
    """A required string that is not blank."""
    return fields.String(required=True, validate=[validate.Length(max=max_length), Visible()], **kwargs)


class Payload(Schema):
    """A message's schema: unknown fields are ignored; a load makes the typed message."""

    class Meta:
        unknown = EXCLUDE

    message_type: type = dict

    @post_load
    def _typed(self, data, **_kwargs):
        return self.message_type(**data)


