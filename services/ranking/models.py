"""The ranking database: one contribution per order, the truth behind every board."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from diandian_common.timestamps import UtcDateTime


class Base(DeclarativeBase):
    pass


class ContributionRow(Base):
    """One order's kilograms. ``revoked_at`` set = no longer on any board."""

    __tablename__ = "contributions"
    __table_args__ = (CheckConstraint("quantity_g > 0", name="ck_contributions_quantity_positive"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(128), unique=True)
    participant_id: Mapped[str] = mapped_column(String(128), index=True)
    display_name: Mapped[str] = mapped_column(String(100))
    mask_name: Mapped[bool] = mapped_column(Boolean, default=False)
    organization: Mapped[str | None] = mapped_column(String(200))
    # organization normalised to its identity on the organisation boards (grouped by it)
    organization_key: Mapped[str | None] = mapped_column(String(200), index=True)
    scene: Mapped[str | None] = mapped_column(String(64), index=True)
    quantity_g: Mapped[int] = mapped_column(BigInteger)  # exact: kilograms × 1000
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
