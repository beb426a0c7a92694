"""The calculator's own tables: scenes with their organisers' inputs, factor sets with their
factors, and estimates."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from diandian_common.timestamps import UtcDateTime, utcnow


class Base(DeclarativeBase):
    pass


class Scene(Base):
    __tablename__ = "scenes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20), index=True)
    location: Mapped[str | None] = mapped_column(String(200))
    # ISO 3166-2:CN (CN-SC): whose grid factor prices the venue's electricity.
    province: Mapped[str | None] = mapped_column(String(6))
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow,
                                                 onupdate=utcnow)


class FactorSetRecord(Base):
    """A factor file as loaded; never changed afterwards (estimates point at it)."""

    __tablename__ = "factor_sets"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # sha256 of the file's canonical JSON: a file edited without a new version is detected.
    checksum: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    factors: Mapped[list[FactorRecord]] = relationship(back_populates="factor_set",
                                                       order_by="FactorRecord.id")


class FactorRecord(Base):
    __tablename__ = "factors"
    __table_args__ = (UniqueConstraint("factor_set_version", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    factor_set_version: Mapped[str] = mapped_column(ForeignKey("factor_sets.version"))
    key: Mapped[str] = mapped_column(String(64))
    # Decimal text, exactly as published (SQLite has no exact decimal type).
    value: Mapped[str] = mapped_column(String(40))
    unit: Mapped[str] = mapped_column(String(80))
    publisher: Mapped[str] = mapped_column(String(300))
    document: Mapped[str] = mapped_column(String(300))
    table_ref: Mapped[str] = mapped_column(String(300))
    citation: Mapped[str] = mapped_column(String(200))
    year: Mapped[int] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(String(500))
    note: Mapped[str | None] = mapped_column(Text)
    edition: Mapped[str | None] = mapped_column(String(200))

    factor_set: Mapped[FactorSetRecord] = relationship(back_populates="factors")


class Estimate(Base):
    """An estimate with everything needed to show it again exactly as computed."""

    __tablename__ = "estimates"
    __table_args__ = (Index("ix_estimates_scene_kind", "scene_slug", "kind"),
                      # a guest's own estimates, newest first (GET /api/v1/my-estimates)
                      Index("ix_estimates_participant_created", "participant_id", "created_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    scene_slug: Mapped[str | None] = mapped_column(ForeignKey("scenes.slug"))
    participant_id: Mapped[str | None] = mapped_column(String(128))
    factor_set_version: Mapped[str] = mapped_column(ForeignKey("factor_sets.version"))
    # Kilograms with 3 decimals are whole grams: stored as integers, exact on every database.
    total_g: Mapped[int] = mapped_column(BigInteger)
    categories_g: Mapped[dict] = mapped_column(JSON)
    # The same with every flight without radiative forcing; NULL when a flight's figure
    # without it is not known (factor set 2025.1 published none, migration 0003).
    total_without_rf_g: Mapped[int | None] = mapped_column(BigInteger)
    categories_without_rf_g: Mapped[dict | None] = mapped_column(JSON)
    activities: Mapped[list] = mapped_column(JSON)
    items: Mapped[list] = mapped_column(JSON)
    benchmark: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OrganiserInputs(Base):
    """What an event's organiser entered about the event itself (not its guests' trips).
    None is "not entered". Quantities with 3 decimals are stored whole (Wh, g), exact on
    every database; the lines are computed when read, with the current factor set."""

    __tablename__ = "organiser_inputs"

    scene_slug: Mapped[str] = mapped_column(ForeignKey("scenes.slug"), primary_key=True)
    attendees: Mapped[int | None] = mapped_column(Integer)
    venue_wh: Mapped[int | None] = mapped_column(BigInteger)
    meat_meals: Mapped[int | None] = mapped_column(Integer)
    vegetarian_meals: Mapped[int | None] = mapped_column(Integer)
    waste_g: Mapped[int | None] = mapped_column(BigInteger)
    waste_treatment: Mapped[str | None] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
