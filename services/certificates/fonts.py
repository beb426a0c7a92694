"""The common-characters subset of the CJK font, made once and cached under ``VAR_DIR``.

Embedding text from a full CJK font makes WeasyPrint subset a 5 MB font on every render.
The certificate's text is almost always GB 2312 plus Latin, so the font is cut down to
those characters once (fontTools, a few seconds), cached in ``CERTIFICATES_FONT_CACHE_DIR``
(default ``VAR_DIR/fonts``), and declared first in the stylesheet (see render.py).
Characters outside it, such as 龘, are taken from the full system font, named next.

``CERTIFICATES_CJK_FONT`` names the font to cut down (``path`` or ``path#index`` inside a
collection); by default the first of :data:`CJK_FAMILIES` that fontconfig knows, else the
Chinese font fontconfig itself prefers (any it reports for ``:lang=zh``, Droid Sans Fallback
included), so a machine with some Chinese font never silently takes the slow full-font path;
``none`` turns the subset off (every render then uses the system font).

What the certificate needs from the machine's fonts is :data:`FONT_NEEDS`, with the Debian
package that provides each; ``python -m certificates.fonts`` checks it against fontconfig and
is the probe that set-up (scripts/setup.sh) installs by.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import fontTools
from fontTools import subset
from fontTools.ttLib import TTFont

from diandian_common import config
from diandian_common.fontconfig import CJK_FAMILIES, SCALABLE_FORMATS, FontSource, cjk_font
from diandian_common.fontconfig import installed as _installed
from diandian_common.fontconfig import query as _fontconfig

log = logging.getLogger(__name__)

# The family the stylesheet asks for first; declared with @font-face when the subset exists.
COMMON_FAMILY = "Diandian CJK Common"
# The full CJK fonts to cut down (CJK_FAMILIES, in the stylesheet's order of preference) and
# how fontconfig finds them are diandian_common.fontconfig's: the gateway's share card draws
# with the same font.

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


def source_font() -> FontSource | None:
    """The full CJK font to cut down, or None (subsetting off, or no Chinese font at all)."""
    configured = config.env("CERTIFICATES_CJK_FONT")
    if configured is not None:
        if configured.strip().lower() == "none":
            return None
        path, _, index = configured.partition("#")
        return FontSource(Path(path), int(index) if index.isdigit() else 0)
    return cjk_font()


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
        if config.env("CERTIFICATES_CJK_FONT", "").strip().lower() != "none":
            log.warning("no Chinese font is installed: certificates render Chinese text as boxes, "
                        "slowly; run `python -m certificates.fonts` to see what to install")
        return None
    try:
        return common_subset(source, cache_dir())
    except Exception:  # noqa: BLE001 - an unreadable or unusual font must not stop certificates
        log.warning("could not subset the CJK font %s; rendering with the full font", source.path,
                    exc_info=True)
        return None


# --- What the certificate needs from the machine's fonts ------------------------------------

@dataclass(frozen=True)
class FontNeed:
    """One thing the stylesheet needs: a family installed, or every character of a sample
    covered by some installed font (Pango falls back to any font that has the glyph)."""
    what: str
    debian_package: str
    families: tuple[str, ...] = ()  # any one of these installed
    characters: str = ""            # each covered by some installed font


FONT_NEEDS = (
    FontNeed("one of the Chinese fonts the stylesheet names first", "fonts-wqy-microhei",
             families=CJK_FAMILIES),
    FontNeed("hanzi beyond GB 2312 (traditional and rare names)", "fonts-wqy-microhei",
             characters="龘張豐"),
    FontNeed("Hangul (Korean names)", "fonts-wqy-microhei", characters="김민준"),
    FontNeed("CJK Extension B (the rarest hanzi)", "fonts-hanazono", characters="𠀀𠀁"),
    FontNeed("the sans-serif face of Latin text", "fonts-dejavu-core",
             families=("DejaVu Sans",)),
    FontNeed("the serif face of the title", "fonts-dejavu-core", families=("DejaVu Serif",)),
    FontNeed("the monospace face of serials and hashes", "fonts-dejavu-core",
             families=("DejaVu Sans Mono",)),
)


@dataclass(frozen=True)
class NeedCheck:
    need: FontNeed
    met_by: str | None  # the family that meets it, or None


def _family_covering(character: str) -> str | None:
    rows = _fontconfig("fc-list", "--format", r"%{family[0]}\t%{fontformat}\n",
                       f":charset={ord(character):x}")
    return next((row[0] for row in sorted(rows or []) if len(row) == 2 and row[1] in SCALABLE_FORMATS),
                None)


def check_needs() -> list[NeedCheck] | None:
    """Each need with the family that meets it; None when fontconfig's tools are missing."""
    if _fontconfig("fc-list", "--format", "") is None:
        return None
    checks = []
    for need in FONT_NEEDS:
        if need.families:
            met_by = next((family for family in need.families if _installed(family, style="")), None)
        else:
            covering = [_family_covering(character) for character in need.characters]
            met_by = None if None in covering else ", ".join(sorted(set(covering)))
        checks.append(NeedCheck(need, met_by))
    return checks


def missing_packages() -> list[str]:
    """The Debian packages that would meet what is missing (fontconfig first, if it is)."""
    checks = check_needs()
    if checks is None:
        return ["fontconfig"]
    return list(dict.fromkeys(check.need.debian_package for check in checks if check.met_by is None))


def report() -> tuple[bool, str]:
    """A report for people: each need met or missing, and which font the subset is cut from."""
    checks = check_needs()
    if checks is None:
        return False, ("MISSING fontconfig's fc-list: certificates cannot find any font "
                       "(Debian: apt-get install fontconfig)")
    lines = [f"{'ok     ' if check.met_by else 'MISSING'} {check.need.what}: "
             + (check.met_by or f"install Debian's {check.need.debian_package}") for check in checks]
    source = source_font()
    lines.append(f"common subset cut from: {source.family or source.path} ({source.path}#{source.index})"
                 if source else "common subset: OFF, every render embeds from the full font (slow)")
    return all(check.met_by for check in checks) and source is not None, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(
        prog="python -m certificates.fonts",
        description="Check the fonts the certificate needs against what fontconfig finds.")
    parser.add_argument("command", nargs="?", choices=("check", "packages"), default="check",
                        help="check: report each need, exit 1 if any is missing (default); "
                             "packages: print the Debian packages that would meet what is missing")
    arguments = parser.parse_args(argv)
    if arguments.command == "packages":
        print(" ".join(missing_packages()))
        return 0
    complete, text = report()
    print(text)
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
