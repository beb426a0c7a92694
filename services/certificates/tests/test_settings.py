"""Configuration: signing keys (with a loud local default), time zone, URLs."""
from __future__ import annotations

import logging
from datetime import timezone

from certificates import settings
from certificates.domain.verification import VerificationCodes
from diandian_common.deployment import DEVELOPMENT_CERTIFICATE_SIGNING_KEY


def test_signing_keys_rotate(monkeypatch):
    monkeypatch.setenv("CERTIFICATE_SIGNING_KEYS", "new-key, old-key")
    codes = settings.verification_codes()
    assert codes.code_for("tokenAAAAAAA") == VerificationCodes(["new-key"]).code_for("tokenAAAAAAA")
    assert codes.token_of(VerificationCodes(["old-key"]).code_for("tokenAAAAAAA")) == "tokenAAAAAAA"


def test_without_keys_a_local_key_signs_and_a_warning_says_so(monkeypatch, caplog):
    monkeypatch.delenv("CERTIFICATE_SIGNING_KEYS", raising=False)
    settings._codes.cache_clear()
    with caplog.at_level(logging.WARNING, logger="certificates.settings"):
        codes = settings.verification_codes()
    assert "CERTIFICATE_SIGNING_KEYS is not set" in caplog.text
    local = VerificationCodes([DEVELOPMENT_CERTIFICATE_SIGNING_KEY])
    assert codes.code_for("tokenAAAAAAA") == local.code_for("tokenAAAAAAA")


def test_display_timezone(monkeypatch):
    monkeypatch.delenv("CERTIFICATE_TIMEZONE", raising=False)
    assert str(settings.display_timezone()) == "Asia/Shanghai"
    monkeypatch.setenv("CERTIFICATE_TIMEZONE", "Europe/Paris")
    assert str(settings.display_timezone()) == "Europe/Paris"
    monkeypatch.setenv("CERTIFICATE_TIMEZONE", "Mars/Olympus_Mons")
    assert settings.display_timezone() is timezone.utc


def test_urls(monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://c.example/")
    assert settings.verify_url("abc.def") == "https://c.example/v/abc.def"
    assert settings.pdf_url("cert_1") == "https://c.example/api/v1/certificates/cert_1/pdf"
