"""How facts are written on the certificate (numbers, dates, identifiers, masked names)."""
from __future__ import annotations

import secrets
from datetime import date, datetime, timezone, tzinfo

TONNE_THRESHOLD_KG = 1_000

_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")


def format_quantity(kg: int, lang: str = "en") -> str:
    """``850`` → ``"850 kg"``; above 1,000 kg in tonnes, exact to the kilogram: ``"12.345 t"``.

    Chinese uses the same figures with 千克 / 吨.
    """
    if isinstance(kg, bool) or not isinstance(kg, int) or kg < 0:
        raise ValueError(f"quantity must be a non-negative whole number of kg, got {kg!r}")
    units = {"en": ("kg", "t"), "zh": ("千克", "吨")}[lang]
    if kg <= TONNE_THRESHOLD_KG:
        return f"{kg:,} {units[0]}"
    tonnes, rest = divmod(kg, 1000)
    figure = f"{tonnes:,}" + (f".{rest:03d}".rstrip("0") if rest else "")
    return f"{figure} {units[1]}"


def format_date(day: date, lang: str = "en") -> str:
    """``2026-11-25`` → ``"25 November 2026"`` / ``"2026年11月25日"``."""
    if lang == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {_EN_MONTHS[day.month - 1]} {day.year}"


def local_date(moment: datetime, zone: tzinfo) -> date:
    """The calendar date of ``moment`` where the certificate is read (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(zone).date()


def new_certificate_id() -> str:
    return "cert_" + secrets.token_hex(10)


# Letters and digits that cannot be misread for one another (no 0/O, 1/I/L) when a
# number is read aloud or typed from paper.
NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
NUMBER_SUFFIX_LENGTH = 8


def certificate_number(issued_on: date, suffix: str | None = None) -> str:
    """Human number printed on the certificate: ``DD-20261125-7KQ3M9XA``.

    The random suffix carries ~40 bits, so numbers of one day practically never collide;
    the database's unique constraint catches the rare case and the issuer draws again.
    """
    if suffix is None:
        suffix = "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(NUMBER_SUFFIX_LENGTH))
    return f"DD-{issued_on:%Y%m%d}-{suffix}"


def mask_name(name: str) -> str:
    """Hide most of a person's name for public verification pages.

    Each word keeps its first character (``"张三丰"`` → ``"张**"``,
    ``"Jane Doe"`` → ``"J*** D**"``); a single character stays as it is.
    """
    def mask_word(word: str) -> str:
        return word[0] + "*" * (len(word) - 1)

    return " ".join(mask_word(word) for word in name.split())
