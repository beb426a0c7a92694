"""The accountants' CSV: cells a spreadsheet cannot run, bytes Excel reads as UTF-8.

Statements carry text that outsiders chose (owner names, payout accounts, project codes).
A spreadsheet treats a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula, and
a leading tab or carriage return can hide one, so ``=HYPERLINK("http://evil")`` as an
owner's name would run on the accountant's machine (CSV injection). Following OWASP's
guidance, a *text* cell that begins with one of those characters is written with a single
quote in front, which spreadsheets show as text. Numbers are never touched: a refund's
``-6000`` stays a number an accountant can add up. The type decides, not the content: an
``int`` is a number, a ``str`` is text, even when it reads like a number.

The document begins with a UTF-8 byte order mark (without it Excel in a Chinese locale
reads the owners' names as GBK and shows mojibake) and ends every record with CRLF
(RFC 4180).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
BOM = "\ufeff"
RECORD_END = "\r\n"

Cell = str | int


def neutralise(text: str) -> str:
    """``text`` as a cell no spreadsheet evaluates: a leading formula character gets ``'``."""
    return QUOTE + text if text.startswith(FORMULA_TRIGGERS) else text


def restore(text: str) -> str:
    """The text :func:`neutralise` was given (for programs reading the CSV back)."""
    if text.startswith(QUOTE) and text[1:].startswith(FORMULA_TRIGGERS):
        return text[1:]
    return text


def cell(value: object) -> Cell:
    """A value as a safe cell: ``None`` is empty, numbers stay numbers, text is neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):  # an int to Python, never a figure in a statement
        raise TypeError("a statement cell is text or a whole number, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return neutralise(value)
    raise TypeError(f"a statement cell is text or a whole number, not {type(value).__name__}")


def document(columns: Sequence[str], rows: Iterable[Sequence[object]], *, bom: bool = True) -> str:
    """The CSV text: the header, then every row's safe cells, CRLF after each record."""
    buffer = io.StringIO()
    if bom:
        buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator=RECORD_END)
    writer.writerow([cell(c) for c in columns])
    writer.writerows([cell(v) for v in row] for row in rows)
    return buffer.getvalue()
