"""QR codes: the one way to build one (:func:`qr_code`), and their dark modules as runs, for
drawing them as compact SVG paths.

Several parts of the platform draw QR codes (scene posters, certificates, pages); this is
the shared geometry, each caller chooses its drawing.
"""
from __future__ import annotations

import qrcode


def qr_code(data: str, error_correction: int = qrcode.constants.ERROR_CORRECT_M, **kwargs) -> qrcode.QRCode:
    """The QR code of ``data``, made (``fit``: the smallest version that holds it).

    The data is one byte-mode segment (``optimize=0``). qrcode's default splits it into
    numeric/alphanumeric segments, and for some inputs — a URL ending in a few dozen zeros
    (a scene slug of zeros) — its Reed-Solomon step then fails with ``ValueError: glog(0)``;
    for a URL one segment costs at most a version."""
    code = qrcode.QRCode(error_correction=error_correction, **kwargs)
    code.add_data(data, optimize=0)
    code.make(fit=True)
    return code


def dark_runs(data: str, border: int = 4) -> tuple[int, list[tuple[int, int, int]]]:
    """``(size, [(x, y, length), ...])``: the QR code of ``data`` (error correction M) as
    horizontal runs of dark modules; ``size`` counts modules including the quiet zone."""
    matrix = qr_code(data, border=border).get_matrix()
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        while x < len(row):
            if row[x]:
                start = x
                while x < len(row) and row[x]:
                    x += 1
                runs.append((start, y, x - start))
            else:
                x += 1
    return len(matrix), runs
