"""QR codes and posters: decoded with a real QR decoder (zxing-cpp)."""
from __future__ import annotations

import io
from datetime import date

import pypdfium2
import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from calculator import rendering, tasks
from calculator.rendering import AssetsOnlyFetcher, RenderCache, SceneDrawing

from .conftest import BASE_URL

PAGE_URL = f"{BASE_URL}/s/cdcn-forum-2021"


def decode_qr(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image)]


def pdf_page_image(pdf: bytes, dpi: int = 150) -> Image.Image:
    return pypdfium2.PdfDocument(pdf)[0].render(scale=dpi / 72).to_pil()


def drawing(**overrides) -> SceneDrawing:
    fields = {"slug": "cdcn-forum-2021", "name": "首届中国数字碳中和高峰论坛",
              "name_en": "First China Digital Carbon Neutrality Forum", "type": "conference",
              "location": "成都 Chengdu", "starts_on": date(2021, 9, 7), "ends_on": None,
              "page_url": PAGE_URL, **overrides}
    return SceneDrawing(**fields)


def test_qr_png_from_the_api_decodes_to_the_page_url(client, make_scene):
    make_scene()
    response = client.get("/api/v1/scenes/cdcn-forum-2021/qr.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    assert image.format == "PNG"
    assert decode_qr(image) == [PAGE_URL]
    # printed small or photographed from afar, it still reads
    assert decode_qr(image.resize((image.width // 4, image.height // 4))) == [PAGE_URL]


def test_a_slug_of_zeros_gets_its_qr_code_and_poster(client, make_scene):
    # qrcode's default segmentation failed on this URL with "glog(0)": a 500 before
    slug = "0" * 48
    make_scene(slug=slug)
    png = client.get(f"/api/v1/scenes/{slug}/qr.png")
    assert png.status_code == 200
    assert decode_qr(Image.open(io.BytesIO(png.data))) == [f"{BASE_URL}/s/{slug}"]
    poster = client.get(f"/api/v1/scenes/{slug}/poster.pdf")
    assert poster.status_code == 200 and poster.data.startswith(b"%PDF")


def test_qr_png_is_cached_with_an_etag(client, make_scene):
    make_scene()
    first = client.get("/api/v1/scenes/cdcn-forum-2021/qr.png")
    etag = first.headers["ETag"]
    again = client.get("/api/v1/scenes/cdcn-forum-2021/qr.png", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_poster_pdf_from_the_api(client, make_scene):
    make_scene()
    response = client.get("/api/v1/scenes/cdcn-forum-2021/poster.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    assert len(reader.pages) == 1
    width, height = (float(v) for v in reader.pages[0].mediabox.upper_right)
    assert (round(width / 72 * 25.4), round(height / 72 * 25.4)) == (210, 297)  # A4
    text = reader.pages[0].extract_text()
    for expected in ("首届中国数字碳中和高峰论坛", "First China Digital Carbon Neutrality Forum",
                     "扫码，让您的出行碳中和", "Scan to make your visit carbon neutral"):
        assert expected in text
    assert decode_qr(pdf_page_image(response.data)) == [PAGE_URL]


def test_poster_escapes_scene_texts_and_fetches_nothing_else(monkeypatch):
    fetched = []
    real_fetch = AssetsOnlyFetcher.fetch

    def spy(self, url, headers=None):
        fetched.append(url)
        return real_fetch(self, url, headers)

    monkeypatch.setattr(AssetsOnlyFetcher, "fetch", spy)
    hostile = '<img src="http://evil.example/x.png"><link rel="stylesheet" href="file:///etc/passwd">'
    html = rendering.poster_html(drawing(name=hostile))
    assert "<img src" not in html and "&lt;img" in html
    pdf = rendering.poster_pdf(drawing(name=hostile))
    assert "evil.example" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text().replace("\n", "")
    assert [url.rsplit("/", 1)[-1] for url in fetched] == ["poster.css"]


@pytest.mark.parametrize("url", ["http://evil.example/a.css", "file:///etc/passwd",
                                 "data:text/css,body{}", "file://" + str(rendering.ASSETS_DIR)
                                 + "/../templates/poster.html"])
def test_fetcher_refuses_everything_but_the_assets(url):
    with pytest.raises(ValueError):
        AssetsOnlyFetcher().fetch(url)


def test_fetcher_serves_the_assets():
    response = AssetsOnlyFetcher().fetch((rendering.ASSETS_DIR / "poster.css").as_uri())
    assert b"@page" in response.read()


def test_long_names_stay_on_one_page():
    pdf = rendering.poster_pdf(drawing(name="长" * 200, name_en="Long " * 40))
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    assert decode_qr(pdf_page_image(pdf)) == [PAGE_URL]


def test_render_cache_reuses_and_replaces_files(tmp_path, monkeypatch):
    cache = RenderCache(tmp_path)
    calls = []
    real_qr_png = rendering.qr_png
    monkeypatch.setattr(rendering, "qr_png", lambda url: calls.append(url) or real_qr_png(url))

    first = cache.qr(drawing())
    assert cache.qr(drawing()) == first and calls == [PAGE_URL]
    # a renamed scene keeps its QR code (same URL); a new base URL draws a new one
    assert cache.qr(drawing(name="另一个名字")) == first
    moved = cache.qr(drawing(page_url="https://elsewhere.example/s/cdcn-forum-2021"))
    assert moved.etag != first.etag
    assert [p.name for p in tmp_path.iterdir()] == [f"cdcn-forum-2021.qr.{moved.etag}.png"]


def test_poster_fingerprint_follows_the_texts(tmp_path, monkeypatch):
    monkeypatch.setattr(rendering, "poster_pdf", lambda d: f"%PDF {d.name}".encode())
    cache = RenderCache(tmp_path)
    first = cache.poster(drawing())
    assert cache.poster(drawing()) == first
    renamed = cache.poster(drawing(name="新名字"))
    assert renamed.etag != first.etag and renamed.content == "%PDF 新名字".encode()
    assert len(list(tmp_path.glob("*.pdf"))) == 1


def test_prerender_task_fills_the_cache_the_api_serves(client, make_scene, env, monkeypatch):
    make_scene()  # the task reads it through the wiring create_app bound to the test's database
    renders = []
    real_poster_pdf = rendering.poster_pdf
    monkeypatch.setattr(rendering, "poster_pdf", lambda d: renders.append(d.slug) or real_poster_pdf(d))

    payload = {"v": 1, "slug": "cdcn-forum-2021"}
    tasks.prerender_scene.run(payload)
    tasks.prerender_scene.run(payload)  # redelivered: nothing drawn twice
    tasks.prerender_scene.run({"v": 1, "slug": "no-such-scene"})  # logged, not raised
    cache_dir = env / "var" / "calculator" / "scenes"
    assert sorted(p.suffix for p in cache_dir.iterdir()) == [".pdf", ".png"]
    assert renders == ["cdcn-forum-2021"]

    response = client.get("/api/v1/scenes/cdcn-forum-2021/poster.pdf")
    assert response.status_code == 200 and renders == ["cdcn-forum-2021"]  # from the cache


def test_task_refuses_unknown_message_versions():
    from diandian_common.celery_app import UnsupportedMessage

    with pytest.raises(UnsupportedMessage):
        tasks.prerender_scene.run({"v": 2, "slug": "x"})
