"""Fair inventory: no one guest, browser or address can take a project's credits from the others.

An unpaid order reserves its kilograms, so a reservation is the scarce thing: a guest's
single order is capped (larger orders go through an operator key), so is what one
participant and one address hold unpaid at a time, and when a project runs low its new
reservations get a shorter payment window so abandoned ones come back sooner.

Pure rules; the limits come from the environment (ordering/service.py) and are documented
in services/orders/README.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Limits:
    guest_order_kg: int           # one order placed by a guest (not an operator key)
    unpaid_per_participant_kg: int
    unpaid_per_address_kg: int
    payment_window: timedelta
    low_inventory_payment_window: timedelta


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str
    field: str | None = None


def check_order(limits: Limits, *, quantity_kg: int, by_operator: bool, unpaid_of_participant_kg: int,
                unpaid_of_address_kg: int | None) -> Refusal | None:
    """Why a new order of ``quantity_kg`` may not reserve, or None when it may.

    ``unpaid_of_*`` are what the participant and the address hold unpaid already (the
    address None when unknown, e.g. a service called without the gateway). An operator key
    is not capped per order, and its guests share the key's own address, so only the
    per-participant cap applies to it."""
    if not by_operator and quantity_kg > limits.guest_order_kg:
        return Refusal(422, "validation_error",
                       f"a guest's order is at most {limits.guest_order_kg} kg; larger orders are placed "
                       f"through an operator key", field="quantity_kg")
    if unpaid_of_participant_kg + quantity_kg > limits.unpaid_per_participant_kg:
        return Refusal(409, "unpaid_limit",
                       f"this participant already holds {unpaid_of_participant_kg} kg unpaid; at most "
                       f"{limits.unpaid_per_participant_kg} kg may wait for payment at a time: pay or "
                       f"let earlier orders expire")
    if not by_operator and unpaid_of_address_kg is not None \
            and unpaid_of_address_kg + quantity_kg > limits.unpaid_per_address_kg:
        return Refusal(409, "unpaid_limit",
                       f"orders from this address already hold {unpaid_of_address_kg} kg unpaid; at most "
                       f"{limits.unpaid_per_address_kg} kg may wait for payment at a time")
    return None


def payment_window(limits: Limits, *, available_after_kg: int, low_threshold_kg: int) -> timedelta:
    """How long a new reservation waits for payment: shorter once the project is low, so
    reservations nobody pays return to the other guests sooner."""
    if available_after_kg < low_threshold_kg:
        return min(limits.payment_window, limits.low_inventory_payment_window)
    return limits.payment_window
