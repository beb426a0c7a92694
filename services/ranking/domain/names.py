"""Display names: normalisation, masking, and organisation identity."""
from __future__ import annotations

import unicodedata

MASK = "*"
MAX_MASK_STARS = 3


def normalize_text(text: str) -> str:
    """NFKC, control characters dropped, runs of whitespace collapsed, trimmed."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cc" or ch.isspace())
    return " ".join(text.split())


def _clusters(text: str) -> list[str]:
    """Characters with their combining marks attached (enough for names)."""
    clusters: list[str] = []
    for ch in text:
        if clusters and unicodedata.combining(ch):
            clusters[-1] += ch
        else:
            clusters.append(ch)
    return clusters


def mask_name(name: str) -> str:
    """Keep the first character, hide the rest behind one to three asterisks.

    张三 → 张*, 欧阳娜娜 → 欧***, Alice Wong → A***, 李 → 李*. The number of asterisks
    is capped so that long names do not reveal their length.
    """
    clusters = [c for c in _clusters(normalize_text(name)) if not c.isspace()]
    if not clusters:
        return MASK
    return clusters[0] + MASK * min(MAX_MASK_STARS, max(1, len(clusters) - 1))


def organization_key(organization: str) -> str:
    """The identity of an organisation on its board: spelling variants in case and
    spacing ("Tsinghua  University", "tsinghua university") are one organisation."""
    return normalize_text(organization).casefold()
