"""Tables of the certificates service: issued certificates, the registry records shown on them,
and the outbox."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from diandian_common.outbox import OutboxMixin
from diandian_common.timestamps import UtcDateTime, utcnow

STATUS_VALID = "valid"
STATUS_REVOKED = "revoked"


class Base(DeclarativeBase):
    pass


class Certificate(Base):
    __tablename__ = "certificates"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    # Unique: one order never gets two certificates, even when its message is redelivered.
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    holder: Mapped[str] = mapped_column(String(500))
    organization: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The holder's choice to appear masked (张*) in public: verifications then never show more.
    holder_masked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    quantity_kg: Mapped[int] = mapped_column(BigInteger)
    # A snapshot of what was retired, as the orders service described it at retirement.
    project: Mapped[dict] = mapped_column(JSON)
    serial_range: Mapped[str] = mapped_column(Text)
    scene: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    ledger_hash: Mapped[str | None] = mapped_column(String(128), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    verify_token: Mapped[str] = mapped_column(String(32), unique=True)
    # The signed code printed in the QR code, kept so the URL stays the same after key rotation.
    verify_code: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=STATUS_VALID)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Whether the revocation asked orders to refund the payment (sent again as asked).
    revocation_refund: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # When orders and ranking confirmed they applied the revocation (certificates.revocation_recorded);
    # until both have, the revocation audit sends their message again, each copy waiting
    # longer than the last (revocation_resends, revocation_not_before).
    revocation_orders_acked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revocation_ranking_acked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revocation_resends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    revocation_not_before: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # The registry cancellations covering the order's serials (certificates.show_registry),
    # shown as the certificate's `registry`:
    # {anchored_kg, complete, records: [{cancellation_id, url, retired_on, anchored_kg}]}, or
    # None while none does. Anchoring only grows, so its anchored_kg orders the versions.
    registry_coverage: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    registry_kg: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The registry_kg the stored PDF shows: behind registry_kg, the PDF is rendered again.
    pdf_registry_kg: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class RegistryNotice(Base):
    """The newest ``certificates.show_registry`` of each order, kept whether or not its
    certificate exists yet: issuing a certificate takes the registry from here, so a message
    that arrives before the certificate is never lost."""

    __tablename__ = "registry_notices"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    coverage: Mapped[dict] = mapped_column(JSON)
    anchored_kg: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class OutboxMessage(OutboxMixin, Base):
    __tablename__ = "outbox"
