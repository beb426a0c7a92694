"""Finding font files through fontconfig (plumbing): by family, or the Chinese font fontconfig
itself prefers. The certificates service (its PDF) and the gateway (the share card it draws)
both need "the CJK font this machine has" and must find the same one."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# Full CJK fonts, in order of preference: the certificate's stylesheet names them in this order.
CJK_FAMILIES = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC")
# Font formats WeasyPrint can embed, fontTools can cut down and FreeType draws (not bitmap fonts).
SCALABLE_FORMATS = ("TrueType", "CFF")


@dataclass(frozen=True)
class FontSource:
    path: Path
    index: int = 0  # the face inside a .ttc collection
    family: str = field(default="", compare=False)  # as fontconfig names it, for logs and reports


def query(command: str, *args: str) -> list[list[str]] | None:
    """Tab-separated rows from ``fc-list``/``fc-match``; None when fontconfig's tools are missing."""
    try:
        listed = subprocess.run([command, *args], capture_output=True, text=True, timeout=20,
                                check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [line.split("\t") for line in listed.splitlines() if line]


def installed(family: str, style: str = ":style=Regular") -> FontSource | None:
    """The scalable font file of ``family``, or None."""
    rows = query("fc-list", "--format", r"%{file}\t%{index}\t%{fontformat}\n", family + style)
    for path, index, font_format in sorted(rows or []):
        if path and index.isdigit() and font_format in SCALABLE_FORMATS:
            return FontSource(Path(path), int(index), family)
    return None


def preferred_chinese_font() -> FontSource | None:
    """The Chinese font fontconfig ranks first for simplified Chinese, whatever its family
    (Droid Sans Fallback on a machine with nothing else)."""
    rows = query("fc-match", "--sort", "--format",
                 r"%{family[0]}\t%{file}\t%{index}\t%{fontformat}\t%{lang}\n", ":lang=zh-cn:style=Regular")
    for row in rows or []:
        if len(row) != 5:
            continue
        family, path, index, font_format, langs = row
        if font_format in SCALABLE_FORMATS and index.isdigit() and any(
                lang.startswith("zh") for lang in langs.split("|")):
            return FontSource(Path(path), int(index), family)
    return None


def cjk_font() -> FontSource | None:
    """The first of :data:`CJK_FAMILIES` installed, else the Chinese font fontconfig prefers."""
    for family in CJK_FAMILIES:
        if (found := installed(family)) is not None:
            return found
    return preferred_chinese_font()
