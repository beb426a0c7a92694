"""China's provincial-level divisions by their ISO 3166-2:CN codes (the 2017 letter codes).

A scene's province chooses the grid whose electricity factor prices its venue's energy.
"""
from __future__ import annotations

# ISO 3166-2:CN: 23 provinces, 5 autonomous regions, 4 municipalities, 2 special
# administrative regions (Taiwan is listed by ISO as CN-TW).
PROVINCES = frozenset({
    "CN-AH", "CN-BJ", "CN-CQ", "CN-FJ", "CN-GD", "CN-GS", "CN-GX", "CN-GZ", "CN-HA", "CN-HB",
    "CN-HE", "CN-HI", "CN-HK", "CN-HL", "CN-HN", "CN-JL", "CN-JS", "CN-JX", "CN-LN", "CN-MO",
    "CN-NM", "CN-NX", "CN-QH", "CN-SC", "CN-SD", "CN-SH", "CN-SN", "CN-SX", "CN-TJ", "CN-TW",
    "CN-XJ", "CN-XZ", "CN-YN", "CN-ZJ",
})


def is_province_code(code: object) -> bool:
    """Whether ``code`` is one of the ISO 3166-2:CN codes, written exactly (upper case)."""
    return isinstance(code, str) and code in PROVINCES
