"""Small PNG charts embedded in markdown: what the Dagster UI shows as an image.

Dagster has no image metadata type, but its markdown renderer shows `![alt](data:image/png;base64,...)`.
Every image stored that way is copied into each materialization event, so the figures here are drawn
small (a few inches at a low dpi, a few tens of KB) on a bare matplotlib `Figure` with the Agg canvas
(no pyplot, no display, no global backend state). No Dagster import: the stages draw, the wiring embeds.
"""

from __future__ import annotations

import base64
import io

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
UI_DPI = 70  # about 40 KB or less for a 5 x 3.5 inch chart; enough to read in the asset page
UI_FIGSIZE = (5.0, 3.5)


def figure_png(fig, dpi: int = UI_DPI) -> bytes:
    """`fig` (a matplotlib Figure) rendered as PNG bytes at `dpi`, trimmed to its content."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str, link: str | None = None, link_text: str = "open the MLflow run",
                 note: str | None = None) -> str:
    """Markdown showing `png` inline (a base64 data URI), then a line with `link` when there is one,
    else `note` when given. Raises ValueError for bytes that are not a PNG (a broken image in the UI
    would say nothing about why)."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG image")
    safe_alt = alt.replace("[", "(").replace("]", ")")
    text = f"![{safe_alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
    if link:
        text += f"\n\n[{link_text}]({link})"
    elif note:
        text += f"\n\n{note}"
    return text
