"""The PNG-in-markdown helper the Dagster metadata uses for images."""

from __future__ import annotations

import base64
import io
import re

import pytest
from matplotlib.figure import Figure
from PIL import Image

from hive_assets.figures import PNG_SIGNATURE, UI_DPI, UI_FIGSIZE, figure_png, png_markdown

DATA_URI = re.compile(r"!\[([^\]]*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def decode_embedded_png(markdown: str) -> tuple[str, bytes]:
    """(alt text, PNG bytes) of the one image embedded in `markdown`."""
    (match,) = DATA_URI.findall(markdown)
    return match[0], base64.b64decode(match[1], validate=True)


def _chart() -> bytes:
    fig = Figure(figsize=UI_FIGSIZE)
    ax = fig.add_subplot()
    ax.plot(range(50), [i * i for i in range(50)])
    ax.set_title("a chart")
    return figure_png(fig)


def test_the_markdown_embeds_the_png_and_links_the_run():
    png = _chart()
    text = png_markdown(png, "business: chart [test]", "http://mlflow:5000/#/experiments/1/runs/abc")
    alt, decoded = decode_embedded_png(text)
    assert decoded == png and alt == "business: chart (test)"
    with Image.open(io.BytesIO(decoded)) as image:
        assert image.format == "PNG"
        width, height = image.size
    # 5 x 3.5 inches at UI_DPI, trimmed to the content: a few hundred pixels, not thousands
    assert 0.6 * UI_FIGSIZE[0] * UI_DPI < width <= UI_FIGSIZE[0] * UI_DPI + 10
    assert 0.6 * UI_FIGSIZE[1] * UI_DPI < height <= UI_FIGSIZE[1] * UI_DPI + 10
    assert len(png) < 40_000
    assert text.endswith("\n\n[open the MLflow run](http://mlflow:5000/#/experiments/1/runs/abc)")


def test_without_a_link_the_note_is_shown_and_no_link_is_made():
    text = png_markdown(_chart(), "chart", None, note="no MLflow UI")
    assert text.endswith("\n\nno MLflow UI") and "](http" not in text
    assert decode_embedded_png(text)[1].startswith(PNG_SIGNATURE)


def test_bytes_that_are_not_a_png_are_refused():
    with pytest.raises(ValueError, match="not a PNG"):
        png_markdown(b"GIF89a....", "chart")
