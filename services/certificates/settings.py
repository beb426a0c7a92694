"""Configuration of the certificates service (environment variables, read when used)."""
from __future__ import annotations

import logging
from datetime import timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from diandian_common import config
from diandian_common.deployment import DEVELOPMENT_CERTIFICATE_SIGNING_KEY

from .domain.verification import VerificationCodes, parse_keys

log = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Shanghai"


@lru_cache(maxsize=4)
def _codes(raw_keys: str | None) -> VerificationCodes:
    keys = parse_keys(raw_keys)
    if not keys:
        log.warning("CERTIFICATE_SIGNING_KEYS is not set: certificates are signed with the public "
                    "local development key and can be forged; set it in any real deployment")
        # So a local stack works out of the box; codes signed with it are forgeable by anyone
        # who reads the repository, and production refuses it (diandian_common.deployment).
        keys = [DEVELOPMENT_CERTIFICATE_SIGNING_KEY]
    return VerificationCodes(keys)


def verification_codes() -> VerificationCodes:
    """``CERTIFICATE_SIGNING_KEYS``: comma-separated, the first signs, all verify."""
    return _codes(config.env("CERTIFICATE_SIGNING_KEYS"))


@lru_cache(maxsize=4)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown CERTIFICATE_TIMEZONE %r; printing dates in UTC", name)
        return timezone.utc


def display_timezone() -> tzinfo:
    """``CERTIFICATE_TIMEZONE``: where the printed issue date (and the number's date) is read."""
    return _zone(config.env("CERTIFICATE_TIMEZONE", DEFAULT_TIMEZONE))


def verify_url(verify_code: str) -> str:
    return f"{config.public_base_url()}/v/{verify_code}"


def pdf_url(certificate_id: str) -> str:
    return f"{config.public_base_url()}/api/v1/certificates/{certificate_id}/pdf"


def preview_url(certificate_id: str) -> str:
    return f"{config.public_base_url()}/api/v1/certificates/{certificate_id}/preview.png"
