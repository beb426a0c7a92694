"""QR codes as runs of dark modules, for drawing them as compact SVG paths.

Several parts of the platform draw QR codes inline (certificates, pages); this is the
shared geometry, each caller chooses its SVG drawing.
"""
from __future__ import annotations

import qrcode


def dark_runs(data: str, border: int = 4) -> tuple[int, list[tuple[int, int, int]]]:
    """``(size, [(x, y, length), ...])``: the QR code of ``data`` (error correction M) as
    horizontal runs of dark modules; ``size`` counts modules including the quiet zone."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=border)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
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
