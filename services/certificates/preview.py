"""PNG preview of a certificate for sharing (Open Graph ``og:image``): the PDF's first page."""
from __future__ import annotations

import io
import threading

import pypdfium2 as pdfium

# Open Graph images show best 1200 px wide; A4 landscape makes it 1200 × 849.
PREVIEW_WIDTH_PX = 1200

# PDFium is not thread-safe: one rasterisation at a time per process.
_pdfium_lock = threading.Lock()


def pdf_preview_png(pdf: bytes, width_px: int = PREVIEW_WIDTH_PX) -> bytes:
    """The first page of ``pdf`` as an RGB PNG ``width_px`` wide (height from the page's shape)."""
    with _pdfium_lock:
        document = pdfium.PdfDocument(pdf)
        try:
            page = document[0]
            image = page.render(scale=width_px / page.get_width()).to_pil()
            page.close()
        finally:
            document.close()
    if image.width != width_px:  # rounding of the scaled page size
        image = image.resize((width_px, round(image.height * width_px / image.width)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
