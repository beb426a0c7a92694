"""The rendered PDF, read back: text, page, QR code; autoescaping and the URL fetcher."""
from __future__ import annotations

import http.server
import io
import os
import re
import shutil
import threading
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pypdf
import pypdfium2 as pdfium
import pytest
import zxingcpp
from fontTools.ttLib import TTFont

from certificates import fonts as certificate_fonts
from certificates.render import (ASSETS_DIR, AssetsOnlyFetcher, CertificateContent, FetchRefused,
                                 certificate_html, html_to_pdf, render_certificate)

SHANGHAI = ZoneInfo("Asia/Shanghai")
VERIFY_URL = "https://diandian.example/v/Qm9Z3kW_x-7a.k2VqXU0b7w1d-c9F"


def content(**overrides) -> CertificateContent:
    values = dict(
        number="DD-20261125-7KQ3M9XA", holder="张三丰 Zhang Sanfeng", organization="成都绿色会展有限公司",
        quantity_kg=12_345,
        project={"id": "prj_longquan", "code": "CDCER-0042", "name": "成都龙泉山林业碳汇项目",
                 "name_en": "Chengdu Longquan Mountain Forestry Carbon Sink", "registry": "CDCER",
                 "vintage": 2023},
        serial_range="CDCER-0042-2023:000001001-000013345",
        scene={"slug": "green-expo-2026", "name": "2026 成都国际绿色博览会"},
        issued_at=datetime(2026, 11, 24, 18, 30, tzinfo=timezone.utc),
        verify_url=VERIFY_URL, ledger_hash="9f2c" * 16,
    )
    values.update(overrides)
    return CertificateContent(**values)


def pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def squeezed(text: str) -> str:
    """Text without whitespace: letter-spacing and line wrapping insert spaces and newlines."""
    return re.sub(r"\s+", "", text)


def qr_codes(pdf: bytes) -> list[str]:
    image = pdfium.PdfDocument(pdf)[0].render(scale=3).to_pil()
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


@pytest.fixture(scope="module")
def full_pdf() -> bytes:
    return render_certificate(content(), SHANGHAI)


class TestRenderedCertificate:
    def test_one_a4_landscape_page(self, full_pdf):
        reader = pypdf.PdfReader(io.BytesIO(full_pdf))
        assert len(reader.pages) == 1
        box = reader.pages[0].mediabox
        assert (round(float(box.width)), round(float(box.height))) == (842, 595)

    def test_says_what_was_retired_in_both_languages(self, full_pdf):
        text = squeezed(pdf_text(full_pdf))
        for expected in ["碳中和荣誉证书", "CARBONNEUTRALCERTIFICATEOFHONOUR", "张三丰ZhangSanfeng",
                         "成都绿色会展有限公司", "12.345吨", "12.345t", "成都龙泉山林业碳汇项目",
                         "ChengduLongquanMountainForestryCarbonSink", "CDCER", "2023",
                         "CDCER-0042-2023:000001001-000013345", "2026成都国际绿色博览会",
                         "DD-20261125-7KQ3M9XA", "9f2c" * 16, VERIFY_URL]:
            assert expected in text, expected

    def test_issue_date_is_the_local_date(self, full_pdf):
        text = squeezed(pdf_text(full_pdf))
        assert "2026年11月25日" in text and "25November2026" in text

    def test_the_qr_code_decodes_to_the_verify_url(self, full_pdf):
        assert qr_codes(full_pdf) == [VERIFY_URL]

    def test_common_text_comes_from_the_common_subset_of_the_cjk_font(self, full_pdf):
        source = certificate_fonts.source_font()
        assert source is not None, "no Chinese font installed: " + certificate_fonts.report()[1]
        fonts = font_names(full_pdf)
        # The per-process GB 2312 + Latin subset, itself subset again for this PDF ("ABCDEF+").
        assert "Diandian-CJK-Common" in fonts, fonts
        assert pdf_font_name(source.family) not in fonts  # the full font was not needed
        assert glyphless(full_pdf) == set()

    def test_names_in_any_script_render_without_tofu(self):
        complete, report = certificate_fonts.report()
        if not complete and not setup_can_install():
            pytest.skip("this machine lacks fonts the certificate needs and set-up cannot install "
                        "them (no root or no apt-get):\n" + report)
        assert complete, report  # set-up (scripts/setup.sh) installs what is missing
        # 龘 and 張 are outside GB 2312 and 𠀀 in CJK Extension B: they come from the full fonts,
        # the rest from the subset.
        holder = "김민준 · 龘 · 𠀀 · Zoë 張三豐 Ωμέγα Мария 山田はなこ"
        organization = "Société Générale 上海分行 & Müller GmbH"
        pdf = render_certificate(content(holder=holder, organization=organization), SHANGHAI)
        assert glyphless(pdf) == set()
        text = squeezed(pdf_text(pdf))
        assert squeezed(holder) in text and squeezed(organization) in text
        assert "Diandian-CJK-Common" in font_names(pdf)
        assert qr_codes(pdf) == [VERIFY_URL]

    def test_the_tofu_check_sees_a_character_no_font_has(self):
        pdf = render_certificate(content(holder="Jane \U0010fffd Doe"), SHANGHAI)
        assert glyphless(pdf) == {"\U0010fffd"}

    def test_optional_parts_are_left_out(self):
        pdf = render_certificate(content(holder="Jane Doe", organization=None, scene=None,
                                         quantity_kg=850, ledger_hash=None,
                                         project={**content().project, "name_en": None}), SHANGHAI)
        text = squeezed(pdf_text(pdf))
        assert "JaneDoe" in text and "850千克" in text and "850kg" in text
        assert "活动场景" not in text and "Ledgerhash" not in text and "Chengdu" not in text
        assert qr_codes(pdf) == [VERIFY_URL]

    def test_long_texts_stay_on_one_page_with_a_readable_qr_code(self):
        # At the limits orders accepts: a 100-character name, a 200-character organisation.
        holder = ("国际可持续场馆大会组委会 Organising Committee of the Sustainable Venues Conference "
                  "and Friends")[:100]
        organization = ("Chengdu Municipal Bureau of Ecology and Environment, Department of Climate "
                        "Change and International Cooperation, Low-Carbon Events Office 成都市生态环境局")
        serials = ", ".join(f"CDCER-0042-2023:{i * 1000 + 1:09d}-{i * 1000 + 37:09d}" for i in range(6))
        project = {**content().project, "name": "四川省成都市龙泉山城市森林公园林业碳汇项目（第二期）",
                   "name_en": "Longquan Mountain Urban Forest Park Forestry Carbon Sink Project, "
                              "Chengdu, Sichuan (Phase II)"}
        scene = {"slug": "expo", "name": "2026 成都国际绿色低碳博览会暨第五届可持续场馆论坛 "
                                         "Chengdu International Green Expo 2026"}
        pdf = render_certificate(content(holder=holder, organization=organization, serial_range=serials,
                                         project=project, scene=scene, quantity_kg=1_234_567), SHANGHAI)
        assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) == 1
        text = squeezed(pdf_text(pdf))
        for part in [holder, organization, serials, project["name"], project["name_en"], scene["name"],
                     "1,234.567t"]:
            assert squeezed(part) in text, part
        assert qr_codes(pdf) == [VERIFY_URL]

    def test_the_registry_cancellations_print_with_links_and_no_tofu(self):
        records = [{"cancellation_id": f"CCER-CXL-2026-{i:04d}", "url": f"https://registry.example.cn/c/{i:04d}",
                    "retired_on": f"2026-12-0{i}", "anchored_kg": 1000} for i in (1, 2, 3)]
        serials = ", ".join(f"CDCER-0042-2023:{i * 1000 + 1:09d}-{i * 1000 + 37:09d}" for i in range(6))
        holder = ("国际可持续场馆大会组委会 Organising Committee of the Sustainable Venues Conference "
                  "and Friends")[:100]
        pdf = render_certificate(content(holder=holder, serial_range=serials, registry={
            "anchored_kg": 3000, "complete": False, "records": records}), SHANGHAI)
        reader = pypdf.PdfReader(io.BytesIO(pdf))
        assert len(reader.pages) == 1
        text = squeezed(pdf_text(pdf))
        for record in records:
            assert record["cancellation_id"] in text and record["url"] in text
        assert "2026年12月3日" in text and "3December2026" in text
        assert "其余9.345吨等待登记簿注销" in text and "9.345tmoreawaitingregistrycancellation" in text
        links = [annotation.get_object()["/A"]["/URI"] for annotation in reader.pages[0].get("/Annots", [])]
        assert [r["url"] for r in records] == [link for link in links if "registry.example.cn" in link]
        assert glyphless(pdf) == set()
        assert qr_codes(pdf) == [VERIFY_URL]

    def test_many_long_registry_cancellations_keep_one_page_and_a_readable_qr_code(self):
        # Records at the limits orders accepts (ids of 100, URLs of 500 characters), on a
        # certificate whose other texts are at their limits too.
        records = [{"cancellation_id": f"CCER-CXL-2026-{i:04d}-" + "X" * 81,
                    "url": f"https://registry.example.cn/c/{i:04d}/" + "y" * 460,
                    "retired_on": "2026-12-01", "anchored_kg": 1000} for i in range(1, 13)]
        holder = ("国际可持续场馆大会组委会 Organising Committee of the Sustainable Venues Conference "
                  "and Friends")[:100]
        organization = "Chengdu Municipal Bureau of Ecology and Environment 成都市生态环境局" * 3
        serials = ", ".join(f"CDCER-0042-2023:{i * 1000 + 1:09d}-{i * 1000 + 37:09d}" for i in range(6))
        scene = {"slug": "expo", "name": "2026 成都国际绿色低碳博览会暨第五届可持续场馆论坛 "
                                         "Chengdu International Green Expo 2026"}
        pdf = render_certificate(content(holder=holder, organization=organization[:200], serial_range=serials,
                                         scene=scene, quantity_kg=12_000, registry={
                                             "anchored_kg": 12_000, "complete": True, "records": records}),
                                 SHANGHAI)
        reader = pypdf.PdfReader(io.BytesIO(pdf))
        assert len(reader.pages) == 1
        text = squeezed(pdf_text(pdf))
        assert records[2]["cancellation_id"] in text and records[3]["cancellation_id"] not in text
        assert "另有9条注销记录，见验证页" in text and "9morecancellations:seetheverificationpage" in text
        assert records[0]["url"][:71] + "…" in text  # printed short, linked whole:
        links = [annotation.get_object()["/A"]["/URI"] for annotation in reader.pages[0].get("/Annots", [])]
        assert [r["url"] for r in records[:3]] == [link for link in links if "registry.example.cn" in link]
        assert glyphless(pdf) == set()
        assert qr_codes(pdf) == [VERIFY_URL]

    def test_a_certificate_wholly_anchored_awaits_nothing(self):
        record = {"cancellation_id": "CXL-1", "url": "https://registry.example.cn/c/1",
                  "retired_on": "2026-12-01", "anchored_kg": 12_345}
        text = squeezed(pdf_text(render_certificate(content(registry={
            "anchored_kg": 12_345, "complete": True, "records": [record]}), SHANGHAI)))
        assert "CXL-1" in text and "等待" not in text and "wait" not in text

    def test_without_a_registry_cancellation_it_says_it_awaits_one(self, full_pdf):
        text = squeezed(pdf_text(full_pdf))
        assert "登记簿注销" in text and "等待登记簿注销" in text and "Awaitingregistrycancellation" in text


def _fonts(page):
    resources = page["/Resources"]["/Font"]
    return [resources[name].get_object() for name in resources]


def pdf_font_name(family: str) -> str:
    """How WeasyPrint names an embedded font of ``family`` (spaces become hyphens)."""
    return family.replace(" ", "-")


def setup_can_install() -> bool:
    """Whether scripts/setup.sh can install system packages here (root with apt-get)."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def font_names(pdf: bytes) -> set[str]:
    """The embedded fonts' names without the per-PDF subset tag (``/ABCDEF+Name`` → ``Name``)."""
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    names = set()
    for font in _fonts(page):
        tag, _, name = font["/BaseFont"].lstrip("/").partition("+")
        assert re.fullmatch(r"[A-Z]{6}", tag), f"{font['/BaseFont']} is not embedded as a subset"
        names.add(name)
    return names


def glyphless(pdf: bytes) -> set[str]:
    """Characters printed with no glyph (tofu): glyph 0 or one the embedded font lacks.

    WeasyPrint maps glyph ids to characters in each font's ToUnicode map (CIDs are glyph
    ids); a character no font has gets an id past the end of the font it was set in.
    """
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    missing = set()
    for font in _fonts(page):
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
        glyph_count = TTFont(io.BytesIO(descriptor["/FontFile2"].get_object().get_data()))["maxp"].numGlyphs
        cmap = font["/ToUnicode"].get_object().get_data().decode("ascii")
        for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
            for glyph, utf16 in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
                if not 0 < int(glyph, 16) < glyph_count:
                    missing.add(bytes.fromhex(utf16).decode("utf-16-be"))
    return missing


@pytest.fixture
def http_server():
    """A local HTTP server that records every request it gets."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


@pytest.fixture
def fetched(monkeypatch) -> list[str]:
    """Every URL WeasyPrint asks the fetcher for during the test."""
    urls: list[str] = []
    original = AssetsOnlyFetcher.fetch

    def spy(self, url, headers=None):
        urls.append(url)
        return original(self, url, headers)

    monkeypatch.setattr(AssetsOnlyFetcher, "fetch", spy)
    return urls


class TestInjection:
    def test_markup_in_names_is_escaped_in_the_html(self):
        html = certificate_html(content(holder='<img src="file:///etc/passwd">',
                                        organization="<script>alert(1)</script>"), SHANGHAI)
        assert "&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in html
        assert "&lt;script&gt;" in html
        assert "<img" not in html and "<script" not in html

    def test_markup_in_names_prints_as_text_and_fetches_nothing(self, http_server, fetched):
        base, requests = http_server
        holder = '<img src="file:///etc/passwd">'
        organization = f'<img src="{base}/tracker.png">'
        pdf = render_certificate(content(holder=holder, organization=organization), SHANGHAI)
        text = pdf_text(pdf)
        assert holder in text
        assert organization in text
        assert "root:" not in text
        assert requests == []
        # Only the stylesheet's own background was requested.
        assert fetched and all(url.startswith(ASSETS_DIR.as_uri() + "/") for url in fetched), fetched


class TestFetcher:
    def test_serves_packaged_assets(self):
        response = AssetsOnlyFetcher().fetch((ASSETS_DIR / "pattern.svg").as_uri())
        assert response.content_type == "image/svg+xml"
        assert response.read().startswith(b"<svg")

    @pytest.mark.parametrize("url", [
        "file:///etc/passwd",
        (ASSETS_DIR / ".." / "render.py").as_uri(),
        (ASSETS_DIR / "%2e%2e" / "render.py").as_uri().replace("%25", "%"),
        (ASSETS_DIR / "missing.svg").as_uri(),
        ASSETS_DIR.as_uri(),
        "file://evil.example/" + str(ASSETS_DIR / "pattern.svg"),
        "http://127.0.0.1:9/pattern.svg",
        "https://example.com/pattern.svg",
        "ftp://example.com/pattern.svg",
        "data:image/svg+xml;base64,PHN2Zy8+",
        "pattern.svg",
        "file:///%00",
        (ASSETS_DIR / "pattern.svg").as_uri() + "%00.txt",
    ])
    def test_refuses_everything_else(self, url):
        with pytest.raises(FetchRefused):
            AssetsOnlyFetcher().fetch(url)

    def test_refuses_symlinks_leading_out_of_the_assets(self, tmp_path):
        root = tmp_path / "assets"
        root.mkdir()
        secret = tmp_path / "secret.txt"
        secret.write_text("secret")
        (root / "link.svg").symlink_to(secret)
        with pytest.raises(FetchRefused):
            AssetsOnlyFetcher(root).fetch((root / "link.svg").as_uri())

    def test_untrusted_html_reaches_neither_files_nor_network(self, http_server, fetched):
        base, requests = http_server
        pdf = html_to_pdf(f"""<html><head>
            <link rel="stylesheet" href="{base}/style.css">
            <link rel="stylesheet" href="file:///etc/passwd">
            <style>@import url("{base}/import.css"); body {{ background: url("{base}/bg.png"); }}</style>
            </head><body><p>hello</p>
            <img src="{base}/pixel.png"><img src="file:///etc/hostname">
            <img src="data:image/svg+xml,%3Csvg/%3E">
            <object data="{base}/object.svg"></object><iframe src="{base}/frame"></iframe>
            </body></html>""")
        assert pdf.startswith(b"%PDF")
        assert "hello" in pdf_text(pdf)
        assert requests == []
        refused = [url for url in fetched if not url.startswith(ASSETS_DIR.as_uri())]
        assert f"{base}/pixel.png" in refused and "file:///etc/passwd" in refused


# --- A certificate people frame (issue 21): both languages, a link, metadata, tags, no overlap ---

SCENE_BOTH = {"slug": "green-expo-2026", "name": "2026 成都国际绿色博览会",
              "name_en": "Chengdu International Green Expo 2026"}


@pytest.fixture(scope="module")
def framed_pdf() -> bytes:
    return render_certificate(content(scene=SCENE_BOTH), SHANGHAI)


def char_boxes(pdf: bytes, needle: str) -> list[tuple[float, float, float, float]]:
    """The boxes (left, bottom, right, top, in points) of each character of ``needle``'s first
    occurrence on the first page."""
    page = pdfium.PdfDocument(pdf)[0]
    text = page.get_textpage()
    whole = text.get_text_range()
    start = whole.find(needle)
    assert start >= 0, f"{needle!r} not in the page's text"
    return [text.get_charbox(i) for i in range(start, start + len(needle))]


class TestFramedCertificate:
    def test_both_names_of_the_scene(self, framed_pdf):
        text = squeezed(pdf_text(framed_pdf))
        assert squeezed(SCENE_BOTH["name"]) in text and squeezed(SCENE_BOTH["name_en"]) in text

    def test_a_scene_without_an_english_name_prints_the_one_it_has(self):
        text = squeezed(pdf_text(render_certificate(content(), SHANGHAI)))
        assert squeezed("2026 成都国际绿色博览会") in text

    def test_metadata_title_author_subject_language(self, framed_pdf):
        reader = pypdf.PdfReader(io.BytesIO(framed_pdf))
        assert reader.metadata.title.startswith("碳中和荣誉证书 Carbon Neutral Certificate of Honour")
        assert "DD-20261125-7KQ3M9XA" in reader.metadata.title
        assert reader.metadata.author == "Diandian"
        assert "张三丰 Zhang Sanfeng" in reader.metadata.subject and "CO2e" in reader.metadata.subject
        assert reader.trailer["/Root"]["/Lang"] == "zh-Hans"

    def test_tagged_for_screen_readers(self, framed_pdf):
        root = pypdf.PdfReader(io.BytesIO(framed_pdf)).trailer["/Root"]
        assert "/StructTreeRoot" in root
        assert root["/MarkInfo"]["/Marked"] == True  # noqa: E712 - a pypdf BooleanObject
        # PDF/UA asks viewers to show the title, not the file name.
        assert root["/ViewerPreferences"]["/DisplayDocTitle"] == True  # noqa: E712

    def test_the_verify_url_is_a_link(self, framed_pdf):
        page = pypdf.PdfReader(io.BytesIO(framed_pdf)).pages[0]
        uris = [annotation.get_object()["/A"]["/URI"] for annotation in page.get("/Annots", [])
                if annotation.get_object()["/Subtype"] == "/Link" and "/A" in annotation.get_object()]
        assert VERIFY_URL in uris

    @pytest.mark.parametrize("serials", [
        "CDCER-0042-2023:000001001-000013345",
        ", ".join(f"CDCER-0042-2023:{n:09d}-{n + 9:09d}" for n in range(0, 120, 10))])
    def test_the_serial_range_label_keeps_clear_of_its_value(self, serials):
        pdf = render_certificate(content(serial_range=serials, scene=SCENE_BOTH), SHANGHAI)
        label = char_boxes(pdf, "Serial range")
        value = char_boxes(pdf, serials[:12])
        label_right = max(box[2] for box in label)
        value_left = min(box[0] for box in value)
        # The label ends inside its own column: the two cells' padding (2 mm each) at least lies
        # between them. Before issue 21 "Serial range" ran past its column, 2 mm from the value.
        assert value_left - label_right >= 4 * 72 / 25.4, (label_right, value_left)
