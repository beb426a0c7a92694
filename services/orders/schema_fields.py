"""Field rules shared by the orders packages' schemas."""
from __future__ import annotations

from marshmallow import fields, validate

ID = validate.Length(min=1, max=64)
SLUG = validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,63}$", error="must be a scene slug (a-z, 0-9, -)")
MAX_ORDER_KG = 100_000_000  # 100 kt: more than any venue's event
MAX_SERIAL = 999_999_999    # serial ranges print serials with 9 digits (docs/contract.md §3)
MAX_PRICE_FEN_PER_TONNE = 100_000_000  # ¥1,000,000 a tonne: far above any market price
NOT_BLANK = validate.Regexp(r"^\s*\S", error="must not be blank")


def text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=max_length), NOT_BLANK], **kwargs)
