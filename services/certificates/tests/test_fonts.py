"""The common-characters subset of the CJK font: what it covers, its cache, its fallbacks."""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont

from certificates import fonts
from certificates.fonts import FontSource, common_characters, common_subset, common_subset_from_env
from certificates.render import TEMPLATES_DIR

# A small font, so that making a subset takes a moment (the CJK font's takes seconds).
DEJAVU_SANS = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
needs_dejavu = pytest.mark.skipif(not DEJAVU_SANS.is_file(), reason="DejaVu Sans is not installed")


def test_common_characters_are_gb2312_and_latin():
    chars = common_characters()
    assert {ord(c) for c in "的一是中国碳汇证书张三丰龙泉"} <= chars  # common hanzi
    assert {ord(c) for c in "AZaz09 .,;:@éüßŁő€™“”—，。、：（）《》"} <= chars  # Latin and punctuation
    assert {ord(c) for c in "αΩжЯぁアㄅ"} <= chars  # GB 2312's Greek, Cyrillic, kana, bopomofo
    assert not {ord(c) for c in "龘張豐鬱"} & chars  # rare or traditional: from the full font
    assert 6763 + 95 < len(chars) < 9000



def test_the_templates_own_text_is_in_the_common_subset():
    """Everything the certificate prints of its own (headings, the registry's lines, the
    ellipsis of a shortened URL) comes from the subset, never from the full font's fallback."""
    template = (TEMPLATES_DIR / "certificate.html").read_text(encoding="utf-8")
    own = set("".join(re.findall(r"[^\x00-\x7f]", re.sub(r"{[{%#].*?[}%#]}", "", template, flags=re.S))))
    assert {"登", "簿", "销", "等", "待", "余", "另", "验"} <= own
    assert {ord(c) for c in own | {"…"}} <= common_characters()


@needs_dejavu
def test_a_subset_is_made_once_under_a_name_of_its_own(tmp_path, monkeypatch):
    source = FontSource(tmp_path / "DejaVuSans.ttf")
    shutil.copy(DEJAVU_SANS, source.path)

    made = common_subset(source, tmp_path / "cache")

    font = TTFont(made)
    cmap = font.getBestCmap()
    full_cmap = TTFont(DEJAVU_SANS).getBestCmap()
    assert {ord(c) for c in "AZé€—Ωж"} <= set(cmap)
    assert common_characters() & set(full_cmap) <= set(cmap)  # every common character it had
    assert ord("ب") in full_cmap and ord("ب") not in cmap  # Arabic is not kept
    assert len(cmap) < len(full_cmap) / 2
    assert font["name"].getDebugName(1) == fonts.COMMON_FAMILY
    assert os.stat(made).st_mode & 0o777 == 0o644
    assert sorted(p.name for p in made.parent.iterdir()) == [".cjk-common.lock", made.name]

    def must_not_run(*args):
        raise AssertionError("the cached subset should have been used")

    monkeypatch.setattr(fonts, "_make_subset", must_not_run)
    assert common_subset(source, tmp_path / "cache") == made


@needs_dejavu
def test_a_changed_font_gets_a_new_subset(tmp_path):
    source = FontSource(tmp_path / "DejaVuSans.ttf")
    shutil.copy(DEJAVU_SANS, source.path)
    first = common_subset(source, tmp_path / "cache")
    os.utime(source.path, ns=(0, 0))
    assert common_subset(source, tmp_path / "cache") != first


class TestSourceFont:
    def test_configured_path_and_face(self, monkeypatch):
        monkeypatch.setenv("CERTIFICATES_CJK_FONT", "/fonts/NotoSansCJK-Regular.ttc#2")
        assert fonts.source_font() == FontSource(Path("/fonts/NotoSansCJK-Regular.ttc"), 2)
        monkeypatch.setenv("CERTIFICATES_CJK_FONT", "/fonts/wqy.ttf")
        assert fonts.source_font() == FontSource(Path("/fonts/wqy.ttf"), 0)

    def test_none_turns_the_subset_off(self, monkeypatch):
        monkeypatch.setenv("CERTIFICATES_CJK_FONT", "none")
        assert fonts.source_font() is None and common_subset_from_env() is None

    @pytest.mark.skipif(shutil.which("fc-list") is None, reason="fontconfig's fc-list is not installed")
    def test_by_default_the_installed_cjk_font(self, monkeypatch):
        monkeypatch.delenv("CERTIFICATES_CJK_FONT", raising=False)
        installed = subprocess.run(["fc-list", ":lang=zh-cn", "family"], capture_output=True, text=True).stdout
        if not any(family in installed for family in fonts.CJK_FAMILIES):
            pytest.skip(f"none of {fonts.CJK_FAMILIES} is installed")
        source = fonts.source_font()
        assert source is not None and source.path.is_file()
        family = TTFont(source.path, fontNumber=source.index)["name"].getDebugName(1)
        assert family in fonts.CJK_FAMILIES


def test_a_font_that_cannot_be_subset_leaves_the_full_font(tmp_path, monkeypatch, caplog):
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"not a font at all")
    monkeypatch.setenv("CERTIFICATES_CJK_FONT", str(broken))
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("CERTIFICATES_FONT_CACHE_DIR", raising=False)
    with caplog.at_level(logging.WARNING, logger="certificates.fonts"):
        assert common_subset_from_env() is None
    assert "rendering with the full font" in caplog.text
    assert not list((tmp_path / "var" / "fonts").glob("*.ttf"))  # no half-written file left


def test_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("CERTIFICATES_FONT_CACHE_DIR", raising=False)
    assert fonts.cache_dir() == tmp_path / "var" / "fonts"
    monkeypatch.setenv("CERTIFICATES_FONT_CACHE_DIR", str(tmp_path / "image-fonts"))
    assert fonts.cache_dir() == tmp_path / "image-fonts"


# --- What fontconfig finds: real fontconfig, told by FONTCONFIG_FILE to see only some fonts ---

needs_fontconfig = pytest.mark.skipif(shutil.which("fc-list") is None,
                                      reason="fontconfig's fc-list is not installed")


@pytest.fixture
def fontconfig_sees(tmp_path, monkeypatch):
    """Point fontconfig (fc-list, fc-match) at these font folders only."""
    def sees(*folders: Path) -> None:
        config = tmp_path / "fonts.conf"
        config.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
                          + "".join(f"  <dir>{folder}</dir>\n" for folder in folders)
                          + f"  <cachedir>{tmp_path / 'fc-cache'}</cachedir>\n</fontconfig>\n")
        monkeypatch.setenv("FONTCONFIG_FILE", str(config))
        monkeypatch.delenv("CERTIFICATES_CJK_FONT", raising=False)
    return sees


def _renamed_chinese_font(folder: Path, family: str) -> Path:
    """A Chinese font of a family set-up does not know: the machine's own, renamed."""
    source = fonts.source_font()
    if source is None:
        pytest.skip("no Chinese font is installed to make a stand-in from")
    font = TTFont(source.path, fontNumber=source.index)
    for name_id in (1, 4, 6, 16, 17, 21, 22):  # in every language: no trace of the old family
        font["name"].removeNames(nameID=name_id)
    for name_id, value in ((1, family), (4, family), (6, family.replace(" ", ""))):
        font["name"].setName(value, name_id, 3, 1, 0x409)
        font["name"].setName(value, name_id, 1, 0, 0)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "stand-in.ttf"
    font.save(target)
    return target


@needs_fontconfig
class TestWhatFontconfigFinds:
    def test_a_chinese_font_of_any_family_is_cut_down_when_none_of_the_known_ones_is_there(
            self, tmp_path, fontconfig_sees):
        # Like a machine whose only Chinese font is Droid Sans Fallback: never the slow path.
        stand_in = _renamed_chinese_font(tmp_path / "only", "Test Fallback Hei")
        fontconfig_sees(stand_in.parent)
        assert fonts.source_font() == FontSource(stand_in, 0)
        assert fonts.source_font().family == "Test Fallback Hei"

    def test_no_chinese_font_at_all_means_no_subset_and_says_so(self, tmp_path, fontconfig_sees, caplog):
        fontconfig_sees(DEJAVU_SANS.parent)
        assert fonts.source_font() is None
        with caplog.at_level(logging.WARNING, logger="certificates.fonts"):
            assert common_subset_from_env() is None
        assert "no Chinese font is installed" in caplog.text

    @needs_dejavu
    def test_the_probe_names_the_packages_for_what_is_missing(self, tmp_path, fontconfig_sees):
        fontconfig_sees(DEJAVU_SANS.parent)
        assert fonts.missing_packages() == ["fonts-wqy-microhei", "fonts-hanazono"]
        complete, report = fonts.report()
        assert not complete
        assert "MISSING Hangul (Korean names): install Debian's fonts-wqy-microhei" in report
        assert "common subset: OFF" in report
        assert fonts.main(["check"]) == 1

    def test_fonts_seen_by_no_one_are_all_missing(self, tmp_path, fontconfig_sees, capsys):
        fontconfig_sees(tmp_path / "empty")
        assert fonts.main(["packages"]) == 0
        assert capsys.readouterr().out.split() == ["fonts-wqy-microhei", "fonts-hanazono", "fonts-dejavu-core"]

    def test_without_fontconfig_the_probe_asks_for_it(self, tmp_path, monkeypatch):
        monkeypatch.setenv("PATH", str(tmp_path))  # no fc-list, no fc-match
        assert fonts.missing_packages() == ["fontconfig"]
        assert fonts.report() == (False, "MISSING fontconfig's fc-list: certificates cannot find any font "
                                         "(Debian: apt-get install fontconfig)")

    def test_on_this_machine_set_up_left_nothing_missing(self):
        complete, report = fonts.report()
        if not complete and not (os.geteuid() == 0 and shutil.which("apt-get")):
            pytest.skip("set-up cannot install fonts here (no root or no apt-get):\n" + report)
        assert complete, report
