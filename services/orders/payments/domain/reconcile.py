"""What the reconciliation does with an unpaid order that has a trade at a provider, and
what it makes of the providers' answers: pure rules.

An unpaid order is left alone while it is young (its notification is still on the way),
then its trades are queried (a notification lost on the way is found so); once its payment
window has passed, its trades are closed before it is cancelled, so that nobody can pay
for credits that are released; and once the window passed long ago (a provider down that
long), the order is cancelled without waiting any more: a payment that lands on a
cancelled order is refunded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

WAIT, QUERY, CLOSE, CANCEL = "wait", "query", "close", "cancel"
PAID, CLOSED, OPEN, UNREACHABLE = "paid", "closed", "open", "unreachable"
CONFIRM, LEAVE = "confirm", "leave"


@dataclass(frozen=True)
class Timing:
    query_after: timedelta  # an unpaid order this old has its trades queried
    give_up_after: timedelta  # this long past its window, an order is cancelled anyway


def step(created_at: datetime, expires_at: datetime, now: datetime, timing: Timing) -> str:
    """What is due for an unpaid order with a trade: ``wait``, ``query`` (its trades),
    ``close`` (its trades, then cancel it) or ``cancel`` (without waiting for them)."""
    if now >= expires_at + timing.give_up_after:
        return CANCEL
    if now >= expires_at:
        return CLOSE
    if now >= created_at + timing.query_after:
        return QUERY
    return WAIT


def expiry_cancels(has_trade: bool, expires_at: datetime, now: datetime, timing: Timing) -> bool:
    """Does the expiry sweep cancel this unpaid order now? One without a trade at a
    provider (the sandbox's, testpay's) as soon as its window passed; one with a trade
    only after the give-up delay: until then its trades are closed first (``close``)."""
    if now < expires_at:
        return False
    return not has_trade or now >= expires_at + timing.give_up_after


@dataclass(frozen=True)
class Answer:
    """One provider's trade, as asked: ``paid``, ``closed`` (or never opened there),
    ``open`` (may still be paid) or ``unreachable`` (no answer, or a refusal)."""

    provider: str
    kind: str
    detail: str = ""


def outcome(expired: bool, answers: list[Answer]) -> tuple[str, str | None]:
    """What to do with the order: (``confirm``, the provider that was paid), (``cancel``,
    None) when its window passed and every trade is closed, else (``leave``, None): the
    next round asks again."""
    for answer in answers:
        if answer.kind == PAID:
            return CONFIRM, answer.provider
    if expired and answers and all(answer.kind == CLOSED for answer in answers):
        return CANCEL, None
    return LEAVE, None
