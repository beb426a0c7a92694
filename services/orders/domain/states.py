"""Order statuses (SPEC §3) and the moves between them."""
from __future__ import annotations

PENDING_PAYMENT = "pending_payment"
PAID = "paid"
RETIRED = "retired"
COMPLETED = "completed"
CANCELLED = "cancelled"
FAILED = "failed"

ALL = (PENDING_PAYMENT, PAID, RETIRED, COMPLETED, CANCELLED, FAILED)

TRANSITIONS = {
    PENDING_PAYMENT: {PAID, CANCELLED},
    PAID: {RETIRED, FAILED},
    RETIRED: {COMPLETED},
    COMPLETED: set(),
    CANCELLED: set(),
    FAILED: set(),
}


def can_move(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, set())
