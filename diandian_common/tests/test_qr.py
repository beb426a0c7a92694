import zxingcpp
from PIL import Image, ImageDraw

from diandian_common.qr import dark_runs


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
