"""The common-characters subset of the CJK font, made once and cached under ``VAR_DIR``.

Embedding text from a full CJK font makes WeasyPrint subset a 5 MB font on every render.
The certificate's text is almost always GB 2312 plus Latin, so the font is cut down to
those characters once (fontTools, a few seconds), cached in ``CERTIFICATES_FONT_CACHE_DIR``
(default ``VAR_DIR/fonts``), and declared first in the stylesheet (see render.py).
Characters outside it, such as 龘, are taken from the full system font, named next.

``CERTIFICATES_CJK_FONT`` names the font to cut down (``path`` or ``path#index`` inside a
collection); by default the first of :data:`CJK_FAMILIES` that fontconfig knows; ``none``
turns the subset off (every render then uses the system font).
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import fontTools
from fontTools import subset
from fontTools.ttLib import TTFont

from diandian_common import config

log = logging.getLogger(__name__)

# The family the stylesheet asks for first; declared with @font-face when the subset exists.
COMMON_FAMILY = "Diandian CJK Common"
# Full CJK fonts to cut down, in the stylesheet's order of preference.
CJK_FAMILIES = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC")

# Latin, Latin-1, Latin Extended-A/B, general punctuation, currency and letterlike symbols,
# CJK punctuation, full-width forms.
LATIN_AND_PUNCTUATION = ((0x20, 0x7E), (0xA0, 0x24F), (0x2000, 0x206F), (0x20A0, 0x20CF),
                         (0x2100, 0x214F), (0x3000, 0x303F), (0xFF00, 0xFFEF))


@lru_cache(maxsize=1)
def common_characters() -> frozenset[int]:
    """Every character of GB 2312 (the 6,763 common hanzi and its symbols) plus Latin."""
    characters = {code for first, last in LATIN_AND_PUNCTUATION for code in range(first, last + 1)}
    for row in range(0xA1, 0xF8):
        for cell in range(0xA1, 0xFF):
            try:
                characters.add(ord(bytes((row, cell)).decode("gb2312")))
            except UnicodeDecodeError:  # unassigned positions
                pass
    return frozenset(characters)


@dataclass(frozen=True)
class FontSource:
    path: Path
    index: int = 0  # the face inside a .ttc collection


def _installed(family: str) -> FontSource | None:
    try:
        listed = subprocess.run(["fc-list", "--format", r"%{file}\t%{index}\n", f"{family}:style=Regular"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in sorted(listed.splitlines()):
        path, _, index = line.partition("\t")
        if path and index.isdigit():
            return FontSource(Path(path), int(index))
    return None


def source_font() -> FontSource | None:
    """The full CJK font to cut down, or None (subsetting off or no such font)."""
    configured = config.env("CERTIFICATES_CJK_FONT")
    if configured is not None:
        if configured.strip().lower() == "none":
            return None
        path, _, index = configured.partition("#")
        return FontSource(Path(path), int(index) if index.isdigit() else 0)
    for family in CJK_FAMILIES:
        if (found := _installed(family)) is not None:
            return found
    return None


def _cache_name(source: FontSource) -> str:
    stat = source.path.stat()
    fingerprint = hashlib.sha256(repr((
        str(source.path.resolve()), source.index, stat.st_size, stat.st_mtime_ns, fontTools.version,
        sorted(common_characters()),
    )).encode()).hexdigest()[:16]
    return f"cjk-common-{fingerprint}.ttf"


def _make_subset(source: FontSource, target: Path) -> None:
    font = TTFont(source.path, fontNumber=source.index, lazy=False)
    options = subset.Options()
    options.layout_features = ["*"]  # keep every shaping feature (punctuation forms, vertical text)
    options.name_IDs = ["*"]          # keep the copyright and licence records
    options.name_languages = ["*"]
    options.hinting = False           # PDF viewers do their own hinting
    options.notdef_outline = True
    options.drop_tables += ["FFTM"]   # FontForge's timestamps: fontTools cannot subset them
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=common_characters())
    subsetter.subset(font)
    # A name of its own, so that fontconfig never mistakes it for the full font.
    names = font["name"]
    original = names.getDebugName(4) or source.path.name
    for name_id in (1, 2, 3, 4, 6, 16, 17, 21, 22):
        names.removeNames(nameID=name_id)
    for name_id, value in ((1, COMMON_FAMILY), (2, "Regular"), (4, COMMON_FAMILY),
                           (6, COMMON_FAMILY.replace(" ", "")),
                           (3, f"{COMMON_FAMILY}: GB 2312 and Latin subset of {original}")):
        names.setName(value, name_id, 3, 1, 0x409)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".ttf")
    try:
        with os.fdopen(fd, "wb") as handle:
            font.save(handle)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from workers running as other users
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def common_subset(source: FontSource, cache_dir: Path) -> Path:
    """The cached subset of ``source``, made first if needed (one process at a time)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / _cache_name(source)
    if target.is_file():
        return target
    with open(cache_dir / ".cjk-common.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other workers wait, then find the file made
        if not target.is_file():
            log.info("cutting %s down to GB 2312 and Latin into %s", source.path, target)
            _make_subset(source, target)
    return target


def cache_dir() -> Path:
    """``CERTIFICATES_FONT_CACHE_DIR``, else ``VAR_DIR/fonts``."""
    configured = config.env("CERTIFICATES_FONT_CACHE_DIR")
    return Path(configured) if configured else config.var_dir() / "fonts"


def common_subset_from_env() -> Path | None:
    """The subset for this deployment, or None (the system font is then used as it is).

    Never fails a render: any trouble is logged and the full font serves instead.
    """
    source = source_font()
    if source is None:
        return None
    try:
        return common_subset(source, cache_dir())
    except Exception:  # noqa: BLE001 - an unreadable or unusual font must not stop certificates
        log.warning("could not subset the CJK font %s; rendering with the full font", source.path,
                    exc_info=True)
        return None
