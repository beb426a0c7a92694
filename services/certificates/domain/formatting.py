"""How facts are written on the certificate (numbers, dates, identifiers, masked names)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
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


@dataclass(frozen=True)
class RegistryLine:
    """One registry cancellation as the certificate prints it."""

    cancellation_id: str
    url: str
    retired_zh: str
    retired_en: str

    @property
    def printed_url(self) -> str:
        """The URL as printed (the link keeps it whole): a long one shortened to one line."""
        return self.url if len(self.url) <= PRINTED_URL_LENGTH else self.url[:PRINTED_URL_LENGTH - 1] + "…"

    @property
    def printed_length(self) -> int:
        """Characters this line prints, for the template's choice of type size."""
        return len(self.cancellation_id) + len(self.printed_url) + 30


@dataclass(frozen=True)
class RegistryLines:
    """What the certificate prints about the registry: its first cancellations, how many
    more there are, and the kilograms still awaiting one (all while ``records`` is empty)."""

    records: list[RegistryLine]
    awaiting_zh: str | None
    awaiting_en: str | None
    more: int = 0

    @property
    def printed_length(self) -> int:
        return sum(r.printed_length for r in self.records) + (60 if self.more else 0)


# A large order can be covered by many records; the page stays one page and the verification
# page (its QR code) lists them all.
PRINTED_REGISTRY_RECORDS = 3
PRINTED_URL_LENGTH = 72


def registry_lines(registry: dict | None, quantity_kg: int) -> RegistryLines:
    """``registry`` (``{anchored_kg, complete, records}`` or None) as printed lines."""
    if not registry:
        return RegistryLines([], None, None)
    records = [RegistryLine(r["cancellation_id"], r["url"],
                            format_date(date.fromisoformat(r["retired_on"]), "zh"),
                            format_date(date.fromisoformat(r["retired_on"]), "en"))
               for r in registry["records"][:PRINTED_REGISTRY_RECORDS]]
    more = max(len(registry["records"]) - PRINTED_REGISTRY_RECORDS, 0)
    awaiting = max(quantity_kg - registry["anchored_kg"], 0)
    if registry["complete"] or not awaiting:
        return RegistryLines(records, None, None, more)
    return RegistryLines(records, format_quantity(awaiting, "zh"), format_quantity(awaiting, "en"), more)


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
