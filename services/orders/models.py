"""Tables of the orders service (its own database)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from diandian_common.outbox import OutboxMixin, utcnow


class Base(DeclarativeBase):
    pass


class Project(Base):
    """An emission-reduction project whose credits are sold by the kilogram.

    ``issued_kg``, ``reserved_kg`` and ``retired_kg`` are kept in step with the serial
    blocks, open orders and retirements in the same transactions that change those, so
    available = issued − reserved − retired can be read without aggregating.
    """

    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint("reserved_kg >= 0 AND retired_kg >= 0 AND reserved_kg + retired_kg <= issued_kg",
                        name="inventory_adds_up"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    location: Mapped[str] = mapped_column(String(200))
    # "registry" is reserved by SQLAlchemy's declarative base; the column keeps the name.
    registry_name: Mapped[str] = mapped_column("registry", String(40))
    vintage: Mapped[int] = mapped_column(Integer)
    price_fen_per_tonne: Mapped[int] = mapped_column(Integer)
    issued_kg: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_kg: Mapped[int] = mapped_column(BigInteger, default=0)
    retired_kg: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Who receives the money (none yet: the payments wait for the first owner attached)
    # and the platform's fee: fee_bps of each payment, at least fee_min_fen.
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("owners.id"), nullable=True, index=True)
    fee_bps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fee_min_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # project.low_inventory fires when an order takes available_kg below this (None: the
    # global LOW_INVENTORY_THRESHOLD_KG).
    low_inventory_threshold_kg: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    blocks: Mapped[list[SerialBlock]] = relationship(back_populates="project", order_by="SerialBlock.first")
    owner: Mapped[Owner | None] = relationship()

    @property
    def available_kg(self) -> int:
        return self.issued_kg - self.reserved_kg - self.retired_kg


class SerialBlock(Base):
    """Serials issued to a project by its registry: one serial per kilogram, first..last.

    ``next_serial`` is the allocation cursor: serials below it are retired.
    """

    __tablename__ = "serial_blocks"
    __table_args__ = (
        CheckConstraint("first >= 1 AND last >= first", name="block_bounds"),
        CheckConstraint("next_serial >= first AND next_serial <= last + 1", name="cursor_in_block"),
        UniqueConstraint("project_id", "first", name="uq_block_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    first: Mapped[int] = mapped_column(BigInteger)
    last: Mapped[int] = mapped_column(BigInteger)
    next_serial: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project: Mapped[Project] = relationship(back_populates="blocks")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("quantity_kg > 0", name="positive_quantity"),
        CheckConstraint("amount_fen >= 0", name="non_negative_amount"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    quantity_kg: Mapped[int] = mapped_column(BigInteger)
    requested_kg: Mapped[str] = mapped_column(String(32))  # as asked, before rounding up
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    participant_id: Mapped[str] = mapped_column(String(64), index=True)
    # A keyed hash of the address the order came from (the gateway's word): enough to cap
    # what one address holds unpaid, without keeping the address itself.
    address_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    display_name: Mapped[str] = mapped_column(String(100))
    mask_name: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    organization: Mapped[str | None] = mapped_column(String(200), nullable=True)
    scene_slug: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    scene_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    scene_name_en: Mapped[str | None] = mapped_column(String(200), nullable=True)  # for the certificate
    estimate_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payment_provider: Mapped[str] = mapped_column(String(20))
    payment_reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    certificate_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    certificate_verify_code: Mapped[str | None] = mapped_column(String(200), nullable=True)
    certificate_pdf_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    certificate_verify_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Set once when the certificates service reports the certificate revoked.
    certificate_revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Set once when the ranking service acknowledges the order's contribution
    # (orders.contribution_recorded); until then the pipeline audit sends ranking.record again.
    ranked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    project: Mapped[Project] = relationship()
    retirements: Mapped[list[Retirement]] = relationship(order_by="Retirement.serial_first")


class Retirement(Base):
    """A retired serial range. Ranges of one project never overlap: the SQLite trigger and
    the PostgreSQL exclusion constraint created by the migration refuse any that would."""

    __tablename__ = "retirements"
    __table_args__ = (
        CheckConstraint("serial_last >= serial_first", name="range_bounds"),
        UniqueConstraint("project_id", "serial_first", name="uq_retirement_first"),
        UniqueConstraint("project_id", "serial_last", name="uq_retirement_last"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    block_id: Mapped[int] = mapped_column(ForeignKey("serial_blocks.id"))
    serial_first: Mapped[int] = mapped_column(BigInteger)
    serial_last: Mapped[int] = mapped_column(BigInteger)
    retired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LedgerEntry(Base):
    """Append-only, hash-chained public record of retirements (see domain.ledger)."""

    __tablename__ = "ledger_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), unique=True)
    project_id: Mapped[str] = mapped_column(String(40), index=True)
    body: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RegistryRetirement(Base):
    """A cancellation made at the project's registry that backs whole tonnes of the
    platform's retirements (issue 19). It covers the serials of its ``ranges``: the next
    ``quantity_kg`` retired serials of the project, in serial order, that no earlier
    record covers (ledger.domain.anchoring)."""

    __tablename__ = "registry_retirements"
    __table_args__ = (
        CheckConstraint("quantity_kg > 0 AND quantity_kg % 1000 = 0", name="whole_tonnes"),
        UniqueConstraint("project_id", "cancellation_id", name="uq_registry_cancellation"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    quantity_kg: Mapped[int] = mapped_column(BigInteger)
    registry_serial_first: Mapped[str] = mapped_column(String(100))
    registry_serial_last: Mapped[str] = mapped_column(String(100))
    cancellation_id: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    retired_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project: Mapped[Project] = relationship()
    ranges: Mapped[list[AnchoredRange]] = relationship(order_by="AnchoredRange.serial_first")


class AnchoredRange(Base):
    """Serials of a project that a registry retirement covers. Ranges of one project never
    overlap (a tonne is anchored once): the SQLite trigger and the PostgreSQL exclusion
    constraint created by migration 0009 refuse any that would."""

    __tablename__ = "anchored_ranges"
    __table_args__ = (
        CheckConstraint("serial_last >= serial_first", name="anchored_range_bounds"),
        UniqueConstraint("project_id", "serial_first", name="uq_anchored_first"),
        UniqueConstraint("project_id", "serial_last", name="uq_anchored_last"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("registry_retirements.id"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    serial_first: Mapped[int] = mapped_column(BigInteger)
    serial_last: Mapped[int] = mapped_column(BigInteger)


class IdempotencyRecord(Base):
    """What ``POST /orders`` answered for an ``Idempotency-Key`` (kept at least 24 h)."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(40))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), unique=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    provider: Mapped[str] = mapped_column(String(20))
    provider_reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # requested (booked, not sent yet), processing (the provider took it), succeeded (the
    # provider confirmed the money is back with the payer), failed (the provider gave up)
    status: Mapped[str] = mapped_column(String(20), default="requested", server_default="requested")
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PaymentCheckout(Base):
    """A trade opened at a provider for an order (``POST /orders/{id}/checkout``): the
    order may be paid through any provider it has one with, and each is closed at the
    provider when the order ends unpaid."""

    __tablename__ = "payment_checkouts"
    __table_args__ = (UniqueConstraint("order_id", "provider", "method", name="uq_payment_checkout"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PaymentEvent(Base):
    """A provider's webhook call that was acted on. ``(provider, event_id)`` is unique, so
    a retried or replayed call finds its first answer here instead of acting again."""

    __tablename__ = "payment_events"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_payment_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(100))
    # sha256 of what the notification says (PaymentNotification.fingerprint), not of its
    # bytes: a provider's retry may be encrypted anew.
    body_hash: Mapped[str] = mapped_column(String(64))
    response_body: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OutboxMessage(OutboxMixin, Base):
    __tablename__ = "outbox"


class PipelineResend(Base):
    """A message the repair tasks (``orders.resend_stuck``, ``orders.audit_pipeline``) sent
    again for an order: how many times, and when it may go again.

    Each re-send waits twice as long as the one before (ordering/resends.py): a consumer still
    retrying the previous copy through an outage (storage, Redis) must not be handed a new
    retry chain on every pass."""

    __tablename__ = "pipeline_resends"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    task_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    resends: Mapped[int] = mapped_column(Integer, default=0)
    last_resent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


# --- settlement -----------------------------------------------------------------------

class Owner(Base):
    """The company a project's money goes to."""

    __tablename__ = "owners"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    payout_account: Mapped[str] = mapped_column(String(100))  # bank account or payee reference
    contact: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SettlementEntry(Base):
    """One line of the split journal: a captured payment (``capture``) or the reversal of
    one (``refund``, every amount negated). Booked in the transaction that captured or
    refunded the money, in the month (``period``) it happened; never changed afterwards,
    except that lines of a project without an owner go to the first owner attached."""

    __tablename__ = "settlement_entries"
    __table_args__ = (
        UniqueConstraint("order_id", "kind", name="uq_settlement_order_kind"),
        CheckConstraint("gross_fen = provider_fee_fen + fee_fen + net_fen", name="split_adds_up"),
        CheckConstraint("kind IN ('capture', 'refund')", name="settlement_kind"),
        Index("ix_settlement_project_period", "project_id", "period"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("owners.id"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(10))
    period: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM, SETTLEMENT_TIMEZONE
    quantity_kg: Mapped[int] = mapped_column(BigInteger)
    gross_fen: Mapped[int] = mapped_column(BigInteger)
    fee_fen: Mapped[int] = mapped_column(BigInteger)
    net_fen: Mapped[int] = mapped_column(BigInteger)
    fee_bps: Mapped[int] = mapped_column(Integer)          # the rule applied, for the record
    fee_min_fen: Mapped[int] = mapped_column(BigInteger)
    # The payment provider that took the money, its fee on this payment and the rate it
    # was computed with (PAYMENT_FEE_BPS_<PROVIDER>); a refund line gives the fee back.
    provider: Mapped[str | None] = mapped_column(String(20), nullable=True)
    provider_fee_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    provider_fee_bps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    booked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Payout(Base):
    """Money an operator transferred to an owner against a statement (owner, project, month)."""

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="positive_payout"),
        Index("ix_payouts_statement", "owner_id", "project_id", "period"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id"))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    period: Mapped[str] = mapped_column(String(7))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(100), unique=True)  # the bank transfer's reference
    paid_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- outbound webhooks ----------------------------------------------------------------

class WebhookEndpoint(Base):
    """A receiver of events. The secret signs every delivery; it is stored as given out
    (the platform must sign with it) and shown only when the endpoint is created."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    events: Mapped[list] = mapped_column(JSON)
    scene_slug: Mapped[str | None] = mapped_column(String(100), nullable=True)
    description: Mapped[str | None] = mapped_column(String(200), nullable=True)
    secret: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    """Something that happened, written in the transaction that made it happen (the
    outbox of webhooks); ``id`` is what receivers de-duplicate by."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    scene_slug: Mapped[str | None] = mapped_column(String(100), nullable=True)
    data: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint; unique, so an event reaches an endpoint only through
    this row's attempts.

    ``failures`` counts failed attempts in a row and indexes the retry schedule;
    ``next_attempt_at`` is when the next one is due (None once it succeeded or failed for
    good); ``dispatched_at`` is when a message to send it was queued and ``leased_until``
    how long the worker sending it holds it, so neither a redelivered message nor the
    periodic dispatch sends it twice at once.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id", name="uq_delivery_endpoint_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), index=True)  # pending, succeeded, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    event: Mapped[WebhookEvent] = relationship()
    endpoint: Mapped[WebhookEndpoint] = relationship()
    log: Mapped[list[WebhookAttempt]] = relationship(order_by="WebhookAttempt.attempt",
                                                     cascade="all, delete-orphan", passive_deletes=True)


class WebhookAttempt(Base):
    """The log of one attempt: when, how long, what the receiver answered or what failed."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "attempt", name="uq_attempt_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    succeeded: Mapped[bool] = mapped_column(Boolean)


class RegistryNotification(Base):
    """What the certificates service was told of an order's registry coverage
    (``certificates.show_registry``) and what it confirmed holding (``orders.registry_shown``):
    the pipeline audit sends the coverage again while the confirmed kilograms are behind."""

    __tablename__ = "registry_notifications"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    anchored_kg: Mapped[int] = mapped_column(BigInteger)       # the coverage sent last
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    shown_kg: Mapped[int | None] = mapped_column(BigInteger, nullable=True)   # what certificates confirmed

