"""The confusion matrix stays readable at the size the Dagster UI shows it: neighbouring axis labels are
apart by at least a character's width (at 3.6 inches "reject" and "review_required" used to run into
each other)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hive_assets.evaluation._plots import confusion_matrix_figure


@pytest.mark.parametrize("width", [3.6, 5.0])  # the UI's embedded copy, the MLflow artifact
def test_confusion_matrix_tick_labels_do_not_overlap(width):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    fig = confusion_matrix_figure(y, np.where(rng.random(300) < 0.8, y, rng.integers(0, 3, 300)),
                                  "business: confusion matrix (test split)", width)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # the tick labels are placed at draw time
    renderer = canvas.get_renderer()
    (ax,) = fig.axes
    for axis, labels in (("x", ax.get_xticklabels()), ("y", ax.get_yticklabels())):
        boxes = [label.get_window_extent(renderer) for label in labels if label.get_text()]
        assert len(boxes) == 3
        assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2)), [b.bounds for b in boxes]
        font_px = labels[0].get_fontsize() * fig.dpi / 72
        if axis == "x":
            boxes.sort(key=lambda b: b.x0)
            gaps = [b.x0 - a.x1 for a, b in itertools.pairwise(boxes)]
        else:
            boxes.sort(key=lambda b: b.y0)
            gaps = [b.y0 - a.y1 for a, b in itertools.pairwise(boxes)]
        assert min(gaps) >= 0.5 * font_px, (axis, gaps, font_px)
