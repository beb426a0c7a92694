"""The order's lifecycle: its statuses, the moves between them and what each move announces.

Every change of an order's status is one of the moves below, checked against the table;
the service layer (ordering/lifecycle.py) applies the returned :class:`Transition` to the
order and turns its events into outbox messages and webhooks. Nothing here touches a
database or a broker.

    pending_payment --pay--> paid --retire--> retired --complete--> completed
          |                    |                  \\___________________/
        cancel               fail                        refund (status unchanged)
          v                    v
      cancelled --refund--> cancelled          failed
"""
from __future__ import annotations

from dataclasses import dataclass

PENDING_PAYMENT = "pending_payment"
PAID = "paid"
RETIRED = "retired"
COMPLETED = "completed"
CANCELLED = "cancelled"
FAILED = "failed"

ALL = (PENDING_PAYMENT, PAID, RETIRED, COMPLETED, CANCELLED, FAILED)
FINAL = frozenset({COMPLETED, CANCELLED, FAILED})
PAID_OR_LATER = frozenset({PAID, RETIRED, COMPLETED})

# What a move announces; the service layer maps each to its message or webhook.
RETIREMENT_REQUESTED = "retirement_requested"      # orders.retire_credits
ORDER_PAID = "order.paid"                          # webhook
CERTIFICATE_REQUESTED = "certificate_requested"    # certificates.render
CONTRIBUTION_REQUESTED = "contribution_requested"  # ranking.record
ORDER_COMPLETED = "order.completed"                # webhook
CERTIFICATE_ISSUED = "certificate.issued"          # webhook
REFUND_REQUESTED = "refund_requested"              # orders.send_refund


@dataclass(frozen=True)
class Move:
    name: str
    from_statuses: frozenset[str]
    to_status: str | None  # None: the status stays what it was
    events: tuple[str, ...]


MOVES = {move.name: move for move in (
    Move("pay", frozenset({PENDING_PAYMENT}), PAID, (RETIREMENT_REQUESTED, ORDER_PAID)),
    Move("retire", frozenset({PAID}), RETIRED, (CERTIFICATE_REQUESTED, CONTRIBUTION_REQUESTED)),
    Move("complete", frozenset({RETIRED}), COMPLETED, (ORDER_COMPLETED, CERTIFICATE_ISSUED)),
    Move("cancel", frozenset({PENDING_PAYMENT}), CANCELLED, ()),
    Move("fail", frozenset({PAID}), FAILED, (REFUND_REQUESTED,)),
    # Money back without a change of status: a payment that reached a cancelled order, or
    # a revoked certificate refunded (its kilograms stay retired: serials are never resold).
    Move("refund", frozenset({CANCELLED, RETIRED, COMPLETED}), None, (REFUND_REQUESTED,)),
)}

# The status graph, for documentation and tests: every status a move can lead to.
TRANSITIONS = {status: {m.to_status for m in MOVES.values() if status in m.from_statuses and m.to_status}
               for status in ALL}


class IllegalMove(ValueError):
    def __init__(self, move: str, status: str):
        super().__init__(f"an order that is {status} cannot {move}")
        self.move, self.status = move, status


@dataclass(frozen=True)
class Transition:
    move: str
    before: str
    after: str
    events: tuple[str, ...]


def can(move: str, status: str) -> bool:
    return status in MOVES[move].from_statuses


def transition(move: str, status: str) -> Transition:
    """The move from ``status``, or :class:`IllegalMove`."""
    rule = MOVES[move]
    if status not in rule.from_statuses:
        raise IllegalMove(move, status)
    return Transition(move, status, rule.to_status or status, rule.events)


def pay(status: str) -> Transition:
    return transition("pay", status)


def retire(status: str) -> Transition:
    return transition("retire", status)


def complete(status: str) -> Transition:
    return transition("complete", status)


def cancel(status: str) -> Transition:
    return transition("cancel", status)


def fail(status: str) -> Transition:
    return transition("fail", status)


def refund(status: str) -> Transition:
    return transition("refund", status)


def can_move(current: str, target: str) -> bool:
    """Whether some move leads from ``current`` to ``target``."""
    return target in TRANSITIONS.get(current, set())
