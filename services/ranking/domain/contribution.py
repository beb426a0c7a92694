"""A contribution: one order's kilograms, as the ``ranking.record`` message describes it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from .boards import Board, Kind, boards_at, is_slug
from .names import mask_name, normalize_text, organization_key

MAX_ID_LENGTH = 128
MAX_DISPLAY_NAME_LENGTH = 100
MAX_ORGANIZATION_LENGTH = 200
# One order is at most 100,000 t; board totals stay far below the exact range of scores.
MAX_ORDER_GRAMS = 100_000_000 * 1000


class InvalidContribution(ValueError):
    """A message that can never be recorded (retrying it would not help)."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def kg_to_grams(value) -> int:
    """Exact grams of a kilogram amount with at most three decimals; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
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


def _identifier(payload: dict, name: str, errors: dict) -> str | None:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        errors[name] = "required non-empty string"
    elif len(value) > MAX_ID_LENGTH:
        errors[name] = f"longer than {MAX_ID_LENGTH} characters"
    else:
        return value
    return None


def parse_record(payload: dict, now: datetime) -> Contribution:
    """Validate a ``ranking.record`` payload (SPEC §3).

    Lenient where leniency keeps a paid order on the boards: names too long are cut,
    an empty organisation is none, a naive ``occurred_at`` is UTC, and a time after
    ``now`` (clock skew) becomes ``now`` so that no order lands on a future board.
    """
    errors: dict[str, str] = {}
    order_id = _identifier(payload, "order_id", errors)
    participant_id = _identifier(payload, "participant_id", errors)

    display_name = payload.get("display_name")
    if not isinstance(display_name, str) or not normalize_text(display_name):
        errors["display_name"] = "required non-empty string"
    else:
        display_name = normalize_text(display_name)[:MAX_DISPLAY_NAME_LENGTH]

    organization = payload.get("organization")
    if organization is not None and not isinstance(organization, str):
        errors["organization"] = "must be a string or null"
    else:
        organization = normalize_text(organization)[:MAX_ORGANIZATION_LENGTH] if organization else None
        organization = organization or None

    scene = payload.get("scene")
    if scene is not None and (not isinstance(scene, str) or not is_slug(scene)):
        errors["scene"] = "must be a scene slug or null"

    grams = None
    try:
        grams = kg_to_grams(payload.get("quantity_kg"))
    except ValueError as exc:
        errors["quantity_kg"] = str(exc)

    occurred_at = None
    raw_time = payload.get("occurred_at")
    try:
        if not isinstance(raw_time, str):
            raise ValueError
        occurred_at = datetime.fromisoformat(raw_time)
    except ValueError:
        errors["occurred_at"] = "must be an ISO-8601 date-time string"
    else:
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.replace(tzinfo=timezone.utc)
        occurred_at = min(occurred_at.astimezone(timezone.utc), now)

    mask = payload.get("mask_name", False)
    if not isinstance(mask, bool):
        errors["mask_name"] = "must be a boolean"

    if errors:
        raise InvalidContribution(errors)
    return Contribution(order_id=order_id, participant_id=participant_id, display_name=display_name,
                        mask_name=mask, organization=organization, scene=scene, grams=grams,
                        occurred_at=occurred_at)
