"""Scene types, slugs and the form template each type's page starts from."""
from __future__ import annotations

import re

SCENE_TYPES = ("conference", "scenic_spot", "supermarket", "restaurant", "hotel")

# Lowercase words of a-z0-9 joined by single hyphens: safe in URLs, QR codes and file names.
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_MIN_LENGTH, SLUG_MAX_LENGTH = 2, 64

LONG_DISTANCE_TRAVEL = ("flight", "rail", "car", "bus", "metro", "taxi")
LOCAL_TRAVEL = ("car", "bus", "metro", "taxi")

# Which activities a scene's page asks for by default (the guest may still add others).
FORM_TEMPLATES: dict[str, tuple[str, ...]] = {
    "conference": (*LONG_DISTANCE_TRAVEL, "hotel", "meal"),
    "scenic_spot": LONG_DISTANCE_TRAVEL,
    "supermarket": LOCAL_TRAVEL,
    "restaurant": ("meal",),
    "hotel": ("hotel", *LONG_DISTANCE_TRAVEL),
}


def is_valid_slug(slug: str) -> bool:
    return (isinstance(slug, str) and SLUG_MIN_LENGTH <= len(slug) <= SLUG_MAX_LENGTH
            and SLUG_RE.fullmatch(slug) is not None)


def form_for(scene_type: str) -> list[str]:
    return list(FORM_TEMPLATES[scene_type])


def page_url(public_base_url: str, slug: str) -> str:
    return f"{public_base_url.rstrip('/')}/s/{slug}"


def qr_png_url(public_base_url: str, slug: str) -> str:
    return f"{public_base_url.rstrip('/')}/api/v1/scenes/{slug}/qr.png"


def poster_pdf_url(public_base_url: str, slug: str) -> str:
    return f"{public_base_url.rstrip('/')}/api/v1/scenes/{slug}/poster.pdf"
