"""Sending a pipeline message again without stacking retry chains.

The repair tasks (``orders.resend_stuck``, ``orders.audit_pipeline``) re-send a message
whose answer did not come. The consumer may still be working through the previous copy —
retrying it with backoff through a storage or Redis outage — and a copy sent on every pass
would start one more retry chain each time (issue 20: 603 renders for 100 stuck orders).
So every re-send is written down (``pipeline_resends``, in the same transaction as the
outbox row) and the next one of the same message waits twice as long as the last: the
first after ``base`` (the step's grace), then 2 × base, 4 × base … up to an hour.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from ..models import Order, PipelineResend

# However often a message was re-sent, it is tried again at least this often: a consumer
# back from a long outage should not wait longer than that for its repair.
LONGEST_WAIT = timedelta(hours=1)


def wait_after(resends: int, base: timedelta) -> timedelta:
    """How long the ``resends``-th re-send of a message waits before the next one."""
    wait = base
    for _ in range(1, resends):   # doubling stops at the cap: 2 ** resends would overflow timedelta
        if wait >= LONGEST_WAIT:
            break
        wait *= 2
    return min(wait, LONGEST_WAIT)


def due(query: Select, task_name: str, now: datetime) -> Select:
    """``query`` (of orders) without the orders whose ``task_name`` was re-sent too recently."""
    return query.outerjoin(PipelineResend, and_(PipelineResend.order_id == Order.id,
                                                PipelineResend.task_name == task_name)).where(
        or_(PipelineResend.not_before.is_(None), PipelineResend.not_before <= now))


def note(session: Session, order: Order, task_name: str, base: timedelta, now: datetime) -> int:
    """Write down that ``task_name`` was sent again for ``order``; how many times it has been."""
    resend = session.get(PipelineResend, (order.id, task_name))
    if resend is None:
        resend = PipelineResend(order_id=order.id, task_name=task_name, resends=0)
        session.add(resend)
    resend.resends += 1
    resend.last_resent_at = now
    resend.not_before = now + wait_after(resend.resends, base)
    return resend.resends
