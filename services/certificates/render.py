"""HTML → PDF for the certificate of honour (Jinja2 + WeasyPrint).

Safety: the templates are the service's own with autoescaping on, so whatever a guest
types as their name is printed as text; and WeasyPrint fetches resources only through
:class:`AssetsOnlyFetcher`, which serves files from the package's ``assets/`` directory
and refuses everything else (other files, the network, ``data:`` URLs).

Speed (see README.md): the font configuration and the parsed stylesheet are built once per
process and reused by every render; the CJK font is a GB 2312 + Latin subset made once
(fonts.py), so each render subsets a small font, with the full font as fallback for rare
characters; the QR code is inline SVG of few path commands; the facts table has a fixed
layout and the footer explicit widths, so no text is measured for shrink-to-fit sizing.
"""
from __future__ import annotations

import mimetypes
import threading
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse, path2url

from diandian_common.qr import dark_runs

from . import fonts
from .domain.formatting import format_date, format_quantity, local_date, registry_lines

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
ASSETS_DIR = PACKAGE_DIR / "assets"
STYLESHEET = ASSETS_DIR / "certificate.css"
PDF_VARIANT = "pdf/ua-1"


class FetchRefused(ValueError):
    """A resource outside the packaged assets was requested."""


class AssetsOnlyFetcher(URLFetcher):
    """Serves ``file:`` URLs inside ``root`` and refuses every other URL."""

    def __init__(self, root: Path = ASSETS_DIR):
        super().__init__(allowed_protocols={"file"})  # in case the base fetch is ever reached
        self.root = Path(root).resolve()

    def fetch(self, url: str, headers=None) -> URLFetcherResponse:
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            raise FetchRefused(f"refusing to fetch {url[:200]!r}: only packaged assets are served")
        try:
            path = Path(url2pathname(parts.path)).resolve()
            packaged = path.is_relative_to(self.root) and path.is_file()
        except (OSError, ValueError):  # e.g. a NUL byte in the path
            packaged = False
        if not packaged:
            raise FetchRefused(f"refusing to fetch {url[:200]!r}: not a packaged asset")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(path2url(path), path.read_bytes(), {"Content-Type": content_type})


@dataclass(frozen=True)
class CertificateContent:
    """Everything printed on a certificate."""

    number: str
    holder: str
    organization: str | None
    quantity_kg: int
    project: dict
    serial_range: str
    scene: dict | None
    issued_at: datetime
    verify_url: str
    ledger_hash: str | None = None
    # The registry cancellations covering the serials ({anchored_kg, complete, records}), or
    # None: the certificate then says it awaits the registry's cancellation.
    registry: dict | None = None


def qr_svg(data: str) -> Markup:
    """An inline SVG QR code of ``data``: one stroked path, one segment per run of dark modules.

    A stroke of width 1 along the middle of a row covers exactly the modules' squares, and
    takes two path commands per run where a filled outline takes five: WeasyPrint parses
    and draws SVG paths in Python, so this is what the QR code costs per render.
    """
    size, dark = dark_runs(data, border=2)
    runs = [f"M{x} {y}.5h{n}" for x, y, n in dark]
    # shape-rendering crispEdges avoids hairline seams between runs in rasterised output.
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
        f'shape-rendering="crispEdges"><rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path stroke="#000" stroke-width="1" d="{"".join(runs)}"/></svg>'
    )


_jinja = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                     undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def certificate_html(content: CertificateContent, zone: tzinfo) -> str:
    issued_on = local_date(content.issued_at, zone)
    return _jinja.get_template("certificate.html").render(
        number=content.number,
        holder=content.holder,
        organization=content.organization,
        quantity_zh=format_quantity(content.quantity_kg, "zh"),
        quantity_en=format_quantity(content.quantity_kg, "en"),
        project={"name_en": None, **content.project},
        serial_range=content.serial_range,
        # Certificates issued before the scene's English name was sent have none.
        scene={"name_en": None, **content.scene} if content.scene else None,
        issued_zh=format_date(issued_on, "zh"),
        issued_en=format_date(issued_on, "en"),
        ledger_hash=content.ledger_hash,
        verify_url=content.verify_url,
        qr_svg=qr_svg(content.verify_url),
        registry=registry_lines(content.registry, content.quantity_kg),
    )


# One font configuration and one parsed stylesheet per process, built on first use (after
# a worker forks, see tasks.py) and reused by every render. WeasyPrint's shared state is
# not documented as thread-safe, so renders in one process take turns.
_render_lock = threading.Lock()


@lru_cache(maxsize=1)
def _font_config() -> FontConfiguration:
    font_config = FontConfiguration()
    common = fonts.common_subset_from_env()
    if common is not None:
        # Parsing the rule registers the face with this font configuration, for every
        # document rendered with it; only this rule may read from the font cache.
        CSS(string=f'@font-face {{ font-family: "{fonts.COMMON_FAMILY}"; src: url("{common.as_uri()}"); }}',
            font_config=font_config, url_fetcher=AssetsOnlyFetcher(common.parent))
    return font_config


@lru_cache(maxsize=1)
def _stylesheet() -> CSS:
    return CSS(filename=STYLESHEET, font_config=_font_config(), url_fetcher=AssetsOnlyFetcher())


def prepare() -> None:
    """Build the per-process font configuration and stylesheet ahead of the first render.

    The font subset is made here if the cache has none (seconds, once per ``VAR_DIR``);
    Celery workers make it in the parent process, before forking (see tasks.py).
    """
    with _render_lock:
        _stylesheet()


def html_to_pdf(html: str) -> bytes:
    """Render trusted template output; relative URLs resolve inside ``assets/``."""
    with _render_lock:
        document = HTML(string=html, base_url=path2url(ASSETS_DIR) + "/",
                        url_fetcher=AssetsOnlyFetcher())
        # PDF/UA-1: a tagged PDF (structure tree, marked content) that screen readers can
        # read, with the title shown as the document's name; it costs about as much as untagged.
        return document.write_pdf(stylesheets=[_stylesheet()], font_config=_font_config(),
                                  pdf_variant=PDF_VARIANT)


def render_certificate(content: CertificateContent, zone: tzinfo) -> bytes:
    return html_to_pdf(certificate_html(content, zone))
