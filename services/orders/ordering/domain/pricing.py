"""Quantities and prices (docs/contract.md §3): whole kilograms, integer fen."""
from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

KG_PER_TONNE = 1000


def round_up_kg(quantity_kg: Decimal | int | str) -> int:
    """Buyers neutralise at least what they emitted: 12.001 kg → 13 kg."""
    value = Decimal(str(quantity_kg))
    if value <= 0:
        raise ValueError("quantity must be positive")
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def amount_fen(quantity_kg: int, price_fen_per_tonne: int) -> int:
    """``ceil(kg × price_fen_per_tonne / 1000)`` in exact integer arithmetic."""
    if quantity_kg < 0 or price_fen_per_tonne < 0:
        raise ValueError("quantity and price must not be negative")
    return -(-quantity_kg * price_fen_per_tonne // KG_PER_TONNE)
