"""A contribution: one order's kilograms, as the ``ranking.record`` message describes it
(the message's fields and types: docs/contract.md, "Messages")."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Protocol
from zoneinfo import ZoneInfo

from .boards import Board, Kind, boards_at
from .names import mask_name, normalize_text, organization_key

MAX_ID_LENGTH = 128
MAX_DISPLAY_NAME_LENGTH = 100
MAX_ORGANIZATION_LENGTH = 200
# One order is at most 100,000 t; board totals stay far below the exact range of scores.
MAX_ORDER_GRAMS = 100_000_000 * 1000


class InvalidContribution(ValueError):
    """A message that keeps its contract but can never be recorded (retrying would not help)."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def kg_to_grams(value) -> int:
    """Exact grams of a kilogram amount with at most three decimals; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError("must be a number")
    try:
        kg = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not kg.is_finite():
        raise ValueError("must be a finite number")
    grams = kg * 1000
    if grams != grams.to_integral_value():
        raise ValueError("has more than three decimals")
    grams = int(grams)
    if not 0 < grams <= MAX_ORDER_GRAMS:
        raise ValueError(f"must be above 0 and at most {MAX_ORDER_GRAMS // 1000} kg")
    return grams


def grams_to_kg(grams: int) -> float:
    return round(grams / 1000, 3)


@dataclass(frozen=True)
class Contribution:
    order_id: str
    participant_id: str
    display_name: str
    mask_name: bool
    organization: str | None
    scene: str | None
    grams: int
    occurred_at: datetime  # aware, UTC

    @property
    def organization_key(self) -> str | None:
        return organization_key(self.organization) if self.organization else None

    @property
    def shown_name(self) -> str:
        """The name boards show: masked when the participant asked for it."""
        return mask_name(self.display_name) if self.mask_name else self.display_name

    def memberships(self, tz: ZoneInfo, now: datetime, grace: timedelta) -> list[tuple[Board, str]]:
        """(board, member) for every live board this contribution counts on."""
        result = [(board, self.participant_id)
                  for board in boards_at(Kind.INDIVIDUAL, self.scene, self.occurred_at, tz, now, grace)]
        if self.organization_key:
            result += [(board, self.organization_key)
                       for board in boards_at(Kind.ORGANIZATION, self.scene, self.occurred_at, tz, now, grace)]
        return result


class RecordMessage(Protocol):
    """A ``ranking.record`` message as its contract loads it (``contracts.RecordContribution``)."""

    order_id: str
    participant_id: str
    display_name: str
    organization: str | None
    scene: str | None
    quantity_kg: Decimal
    occurred_at: datetime  # aware
    mask_name: bool


def contribution_of(message: RecordMessage, now: datetime) -> Contribution:
    """The contribution a ``ranking.record`` message describes.

    Lenient where leniency keeps a paid order on the boards: names too long are cut,
    an empty organisation is none, and a time after ``now`` (clock skew) becomes ``now``
    so that no order lands on a future board.
    """
    try:
        grams = kg_to_grams(message.quantity_kg)
    except ValueError as exc:
        raise InvalidContribution({"quantity_kg": str(exc)}) from None
    organization = normalize_text(message.organization)[:MAX_ORGANIZATION_LENGTH] if message.organization else None
    return Contribution(order_id=message.order_id, participant_id=message.participant_id,
                        display_name=normalize_text(message.display_name)[:MAX_DISPLAY_NAME_LENGTH],
                        mask_name=message.mask_name, organization=organization or None, scene=message.scene,
                        grams=grams, occurred_at=min(message.occurred_at.astimezone(timezone.utc), now))
