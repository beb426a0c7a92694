"""Sending a pipeline message again without stacking retry chains.

The repair tasks (``orders.resend_stuck``, ``orders.audit_pipeline``) re-send a message
whose answer did not come. Every re-send is written down (``pipeline_resends``, in the same
transaction as the outbox row) and the next one of the same message waits twice as long as
the last (diandian_common.backoff says why and how long).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from diandian_common.backoff import wait_after

from ..models import Order, PipelineResend


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
