"""Outbound webhooks on the orders database: endpoints, events written with the state
change that caused them, and the bookkeeping of each delivery's attempts.

An event is a row written in the transaction that changed the state, with a delivery row
and an outbox message ``orders.deliver_webhook {delivery_id}`` for every active endpoint
that subscribes to it; nothing is written when no endpoint listens. The worker claims a
delivery, POSTs it (sender.py), and records the outcome: success, a retry at the
next time of the schedule, or failure for good after the last attempt. A periodic
dispatch (``orders.dispatch_webhooks``) queues retries that are due and any delivery
whose message was lost.
"""
from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from diandian_common import config
from diandian_common.contracts import build
from diandian_common.errors import ApiError, NotFound
from diandian_common.outbox import enqueue, utcnow
from diandian_common.timestamps import as_utc, iso
from diandian_common.uow import UnitOfWork

from ..models import OutboxMessage, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from ..records import for_update, new_id
from .domain import rules

log = logging.getLogger(__name__)

DELIVER_TASK = "orders.deliver_webhook"
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
DELIVERY_STATUSES = (PENDING, SUCCEEDED, FAILED)
USER_AGENT = "Diandian-Webhooks/1"
# A message may reach the worker a little before the database clock says it is due
# (clocks of two machines): it is sent rather than dropped.
CLOCK_SKEW = timedelta(seconds=5)


@dataclass(frozen=True)
class Settings:
    retry_schedule: tuple[float, ...]
    jitter: float
    timeout_s: float
    allow_http: bool
    allowed_networks: tuple

    @property
    def lease(self) -> timedelta:
        """How long a worker holds a delivery it is sending: well past the timeout."""
        return timedelta(seconds=2 * self.timeout_s + 30)


def settings() -> Settings:
    return Settings(
        retry_schedule=rules.parse_schedule(config.env("WEBHOOK_RETRY_SCHEDULE")),
        jitter=config.env_float("WEBHOOK_RETRY_JITTER", rules.DEFAULT_JITTER),
        timeout_s=config.env_float("WEBHOOK_TIMEOUT_SECONDS", 5.0),
        allow_http=config.env_bool("WEBHOOK_ALLOW_HTTP", False),
        allowed_networks=rules.parse_networks(config.env("WEBHOOK_ALLOWED_NETWORKS")),
    )


# --- endpoints ------------------------------------------------------------------------

def check_url(url: str, current: Settings | None = None) -> None:
    """Refuse (422) what would never be called: not https (unless allowed), credentials in
    it, or a literal IP address that is private, loopback, … and not allowed. Host names
    are resolved and checked at every delivery, not here (DNS answers change)."""
    current = current or settings()
    try:
        target = rules.parse_target(url, current.allow_http)
        literal = _ip_literal(target.host)
        if literal is not None:
            reason = rules.refusal(literal, current.allowed_networks)
            if reason:
                raise rules.UnsafeTarget(f"{literal} is {reason}; such addresses are refused "
                                         "unless inside WEBHOOK_ALLOWED_NETWORKS")
    except rules.UnsafeTarget as exc:
        raise ApiError(422, "validation_error", "some fields are invalid", {"url": [str(exc)]}) from None


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def endpoint_view(endpoint: WebhookEndpoint, secret: str | None = None) -> dict:
    view = {"id": endpoint.id, "url": endpoint.url, "events": list(endpoint.events), "scene": endpoint.scene_slug,
            "description": endpoint.description, "active": endpoint.active,
            "created_at": iso(endpoint.created_at), "updated_at": iso(endpoint.updated_at)}
    if secret is not None:
        view["secret"] = secret
    return view


def create_endpoint(uow: UnitOfWork, *, url: str, events: list[str], scene: str | None = None,
                    description: str | None = None) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (shown to the caller this once)."""
    session = uow.session
    check_url(url)
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    now = utcnow()
    endpoint = WebhookEndpoint(id=new_id("whk"), url=url, events=sorted(set(events)), scene_slug=scene,
                               description=description, secret=secret, active=True, created_at=now, updated_at=now)
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def get_endpoint(uow: UnitOfWork, endpoint_id: str) -> WebhookEndpoint:
    session = uow.session
    return _endpoint(session, endpoint_id)


def _endpoint(session: Session, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("webhook endpoint", endpoint_id)
    return endpoint


def list_endpoints(uow: UnitOfWork) -> list[WebhookEndpoint]:
    session = uow.session
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))


def update_endpoint(uow: UnitOfWork, endpoint_id: str, changes: dict) -> WebhookEndpoint:
    """Change the URL, events, description, or disable (``active: false``) and enable it.
    A disabled endpoint gets no new events; its pending deliveries wait until it is
    enabled again."""
    session = uow.session
    endpoint = _endpoint(session, endpoint_id)
    if "url" in changes:
        check_url(changes["url"])
        endpoint.url = changes["url"]
    if "events" in changes:
        endpoint.events = sorted(set(changes["events"]))
    for field in ("description", "active"):
        if field in changes:
            setattr(endpoint, field, changes[field])
    endpoint.updated_at = utcnow()
    session.flush()
    return endpoint


def delete_endpoint(uow: UnitOfWork, endpoint_id: str) -> None:
    """The endpoint, its deliveries and their log go (the database cascades)."""
    session = uow.session
    session.delete(_endpoint(session, endpoint_id))
    session.flush()


# --- events ---------------------------------------------------------------------------

def emit(session: Session, event_type: str, data: dict | Callable[[], dict], *,
         scene: str | None = None) -> WebhookEvent | None:
    """Record an event for every active endpoint subscribed to it, in the caller's
    transaction; None (nothing written) when no endpoint listens. ``data`` may be a
    function, called only when someone does."""
    if event_type not in rules.EVENT_TYPES:
        raise ValueError(f"unknown webhook event {event_type!r}")
    endpoints = [e for e in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)))
                 if rules.subscribed(e.events, e.scene_slug, event_type, scene)]
    if not endpoints:
        return None
    now = utcnow()
    event = WebhookEvent(id=new_id("evt"), type=event_type, scene_slug=scene,
                         data=data() if callable(data) else data, created_at=now)
    session.add(event)
    deliveries = [WebhookDelivery(endpoint_id=e.id, event_id=event.id, status=PENDING, attempts=0, failures=0,
                                  next_attempt_at=now, dispatched_at=now, created_at=now) for e in endpoints]
    session.add_all(deliveries)
    session.flush()
    for delivery in deliveries:
        enqueue(session, OutboxMessage, DELIVER_TASK, build(DELIVER_TASK, delivery_id=delivery.id))
    return event


def event_body(event: WebhookEvent) -> bytes:
    return rules.body(event.id, event.type, iso(event.created_at), event.data)


# --- delivering -----------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    """A delivery a worker may send now: attempt number ``attempt`` of it."""

    delivery_id: int
    attempt: int
    url: str
    secret: str
    event_id: str
    event_type: str
    body: bytes

    def headers(self, timestamp: int | None = None) -> dict[str, str]:
        timestamp = int(time.time()) if timestamp is None else timestamp
        return {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                rules.SIGNATURE_HEADER: rules.signature_header(self.secret, timestamp, self.body),
                "Diandian-Event-Id": self.event_id, "Diandian-Event-Type": self.event_type,
                "Diandian-Delivery-Attempt": str(self.attempt)}


def _lock_delivery(session: Session, delivery_id: int) -> WebhookDelivery | None:
    query = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
    return session.scalars(for_update(session, query)).first()


def claim(uow: UnitOfWork, delivery_id: int, now: datetime, current: Settings) -> Claim | None:
    """Take the delivery for one attempt, or None when there is nothing to send now:
    delivered or failed already, endpoint gone or disabled, not due yet, being sent by
    another worker, or the message is an old one redelivered (each attempt is sent for a
    message queued after the previous attempt was recorded)."""
    session = uow.session
    delivery = _lock_delivery(session, delivery_id)
    if delivery is None or delivery.status != PENDING or not delivery.endpoint.active:
        return None
    if delivery.dispatched_at is None:
        return None  # no message was queued for the next attempt: this one is a stale duplicate
    if delivery.next_attempt_at is None or as_utc(delivery.next_attempt_at) > now + CLOCK_SKEW:
        return None
    if delivery.leased_until is not None and as_utc(delivery.leased_until) > now:
        return None
    delivery.attempts += 1
    delivery.leased_until = now + current.lease
    return Claim(delivery.id, delivery.attempts, delivery.endpoint.url, delivery.endpoint.secret,
                 delivery.event_id, delivery.event.type, event_body(delivery.event))


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: the receiver's status code, or the error that stopped it."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def record(uow: UnitOfWork, taken: Claim, started_at: datetime, outcome: Outcome, now: datetime,
           current: Settings) -> str | None:
    """Log the attempt and decide what follows; returns the delivery's status."""
    session = uow.session
    delivery = _lock_delivery(session, taken.delivery_id)
    if delivery is None:
        return None  # the endpoint was deleted meanwhile
    session.add(WebhookAttempt(delivery_id=delivery.id, attempt=taken.attempt, started_at=started_at,
                               duration_ms=outcome.duration_ms, status_code=outcome.status_code,
                               error=(outcome.error or "")[:500] or None, succeeded=outcome.succeeded))
    delivery.last_status_code = outcome.status_code
    delivery.last_error = (outcome.error or "")[:500] or None
    delivery.leased_until = None
    delivery.dispatched_at = None
    if outcome.succeeded:
        delivery.status, delivery.delivered_at = SUCCEEDED, now
        delivery.failures, delivery.next_attempt_at = 0, None
        return delivery.status
    delivery.failures += 1
    delay = rules.retry_delay(delivery.failures, current.retry_schedule, current.jitter)
    if delay is None:
        delivery.status, delivery.next_attempt_at = FAILED, None
        log.warning("webhook delivery %s of %s to %s failed for good after %d attempts: %s",
                    delivery.id, delivery.event_id, delivery.endpoint_id, delivery.failures, delivery.last_error)
    else:
        delivery.next_attempt_at = now + timedelta(seconds=delay)
    return delivery.status


def dispatch_due(uow: UnitOfWork, now: datetime, current: Settings, limit: int = 500) -> int:
    """Queue a message for every delivery that is due and neither queued recently nor
    being sent: retries whose time has come, and messages lost on the way."""
    session = uow.session
    requeue_before = now - current.lease
    D = WebhookDelivery
    query = (select(D).join(WebhookEndpoint, WebhookEndpoint.id == D.endpoint_id)
             .where(D.status == PENDING, WebhookEndpoint.active.is_(True), D.next_attempt_at <= now,
                    or_(D.dispatched_at.is_(None), D.dispatched_at <= requeue_before),
                    or_(D.leased_until.is_(None), D.leased_until <= now))
             .order_by(D.next_attempt_at).limit(limit))
    queued = 0
    for delivery in session.scalars(for_update(session, query)):
        delivery.dispatched_at = now
        enqueue(session, OutboxMessage, DELIVER_TASK, build(DELIVER_TASK, delivery_id=delivery.id))
        queued += 1
    return queued


def resend(uow: UnitOfWork, endpoint_id: str, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again now, whatever became of it, with a fresh retry schedule."""
    session = uow.session
    endpoint = _endpoint(session, endpoint_id)
    delivery = _lock_delivery(session, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound("delivery", str(delivery_id))
    if not endpoint.active:
        raise ApiError(409, "endpoint_disabled", f"webhook endpoint {endpoint.id} is disabled; enable it first")
    now = utcnow()
    if delivery.leased_until is not None and as_utc(delivery.leased_until) > now:
        raise ApiError(409, "delivery_in_progress", f"delivery {delivery.id} is being sent right now")
    delivery.status, delivery.failures = PENDING, 0
    delivery.next_attempt_at = delivery.dispatched_at = now
    enqueue(session, OutboxMessage, DELIVER_TASK, build(DELIVER_TASK, delivery_id=delivery.id))
    session.flush()
    return delivery


# --- reading --------------------------------------------------------------------------

def delivery_view(delivery: WebhookDelivery) -> dict:
    return {
        "id": delivery.id, "endpoint_id": delivery.endpoint_id,
        "event": {"id": delivery.event.id, "type": delivery.event.type, "created_at": iso(delivery.event.created_at)},
        "status": delivery.status, "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at), "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error, "delivered_at": iso(delivery.delivered_at),
        "created_at": iso(delivery.created_at),
        "log": [{"attempt": a.attempt, "started_at": iso(a.started_at), "duration_ms": a.duration_ms,
                 "status_code": a.status_code, "error": a.error, "succeeded": a.succeeded} for a in delivery.log],
    }


def list_deliveries(uow: UnitOfWork, endpoint_id: str, *, status: str | None = None,
                    event_type: str | None = None, event_id: str | None = None,
                    limit: int = 50, after: int | None = None) -> dict:
    """Newest first; ``after`` is the last id of the previous page."""
    session = uow.session
    _endpoint(session, endpoint_id)
    D = WebhookDelivery
    query = select(D).where(D.endpoint_id == endpoint_id).order_by(D.id.desc())
    if status:
        query = query.where(D.status == status)
    if event_type or event_id:
        query = query.join(WebhookEvent, WebhookEvent.id == D.event_id)
        if event_type:
            query = query.where(WebhookEvent.type == event_type)
        if event_id:
            query = query.where(WebhookEvent.id == event_id)
    if after is not None:
        query = query.where(D.id < after)
    rows = list(session.scalars(query.limit(limit + 1)))
    page = rows[:limit]
    return {"items": [delivery_view(d) for d in page], "next_after": page[-1].id if len(rows) > limit else None}
