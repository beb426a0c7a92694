"""The gateway's own database: operator API keys (hashes only, never the keys), the
operator pages' sessions (hashes of their tokens, never the tokens) and guests' one-time
moves to another device (keyed hashes of their codes and links, never those)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from diandian_common.timestamps import UtcDateTime


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    """One operator key. ``key_hash`` is the SHA-256 of the whole key; ``scopes`` is
    space-separated; a revoked key stays listed (who had access, until when)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())


class OperatorSession(Base):
    """One login to the operator pages. ``id`` is the SHA-256 of the random token in the
    browser's cookie, so a copy of the table opens no session. ``key_hash`` is the key's hash
    at login: the session lives while that key does (unrevoked, and for ``env`` not replaced
    by another ``OPERATOR_API_KEY``) and until ``expires_at``."""

    __tablename__ = "operator_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), ForeignKey("api_keys.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class DeviceTransfer(Base):
    """A guest's one-time move of their participant cookie to another device (the /me page).
    ``id`` and ``code_hash`` are keyed hashes (HMAC with the gateway's secret) of the link's
    token and of the short code, so a copy of the table gives neither, nor lets anyone try
    codes offline. Claimed once: ``used_at`` is set by the one UPDATE that may set it."""

    __tablename__ = "device_transfers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    participant_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
