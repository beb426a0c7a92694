import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from diandian_common.qr import dark_runs, qr_code


def test_runs_redraw_a_qr_code_that_decodes():
    url = "https://diandian.example/v/AbC123.xyz"
    size, runs = dark_runs(url, border=4)
    scale = 8
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y, n in runs:
        draw.rectangle([x * scale, y * scale, (x + n) * scale - 1, (y + 1) * scale - 1], fill=0)
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [url]
    assert all(n >= 1 and 0 <= x and x + n <= size for x, _, n in runs)


@pytest.mark.parametrize("tail", ["0" * 20, "0" * 48, "0" * 64, "1" * 60, "A" * 90])
@pytest.mark.parametrize("error_correction", [0, 1, 2, 3])  # M, L, H, Q
def test_runs_of_digits_make_a_qr_code_that_decodes(tail, error_correction):
    # qrcode's default segmentation failed on these ("glog(0)"): a scene slug of 48 zeros
    url = f"http://localhost:8000/s/{tail}"
    image = qr_code(url, error_correction, box_size=8).make_image().get_image().convert("L")
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [url]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyz-:/.ABCDEFGHIJKLMNOPQRSTUVWXYZ", max_size=150),
       st.sampled_from([0, 1, 2, 3]))
def test_any_url_makes_a_qr_code(path, error_correction):
    assert qr_code(f"https://diandian.example/{path}", error_correction).modules_count >= 21
