"""The images logged with a training run: confusion matrix and reliability diagram, as PNG bytes (the
validation report also embeds small copies in its Dagster metadata).

Drawn on a bare matplotlib `Figure` with the Agg canvas (no pyplot, no display, no global backend state),
so they render the same in a Dagster worker, a test and a headless server.
"""

from __future__ import annotations

import numpy as np

from hive_assets.config import CLASSES
from hive_assets.evaluation._metrics import ECE_BINS, expected_calibration_error
from hive_assets.figures import figure_png

ARTIFACT_DPI = 100  # the copies logged to MLflow; the UI embeds smaller ones (figures.UI_DPI)


def confusion_matrix_png(y_true: np.ndarray, y_pred: np.ndarray, title: str = "", dpi: int = ARTIFACT_DPI,
                         width: float = 5.0) -> bytes:
    """Counts per (true, predicted) class, rows normalised in the colour, counts as text; `width` inches."""
    return figure_png(confusion_matrix_figure(y_true, y_pred, title, width), dpi)


def confusion_matrix_figure(y_true: np.ndarray, y_pred: np.ndarray, title: str = "", width: float = 5.0):
    """The matplotlib Figure behind `confusion_matrix_png`."""
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    fig = Figure(figsize=(width, width * 0.9))
    ax = fig.add_subplot()
    # "review_required" on one line is wider than a cell at the UI's size: break it, so that no two tick
    # labels overlap whatever the width; fonts scale with the width (9 pt at 3.6 inches)
    font = max(7.0, min(11.0, 2.5 * width))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=list(range(len(CLASSES))),
                                            display_labels=[c.replace("_", "\n") for c in CLASSES], ax=ax,
                                            colorbar=False, cmap="Blues", text_kw={"fontsize": font})
    ax.tick_params(labelsize=font)
    ax.set_xlabel("predicted", fontsize=font)
    ax.set_ylabel("human label", fontsize=font)
    ax.set_title(title or "confusion matrix (test split)", fontsize=font + 1)
    return fig


def reliability_diagram_png(y_true: np.ndarray, proba: np.ndarray, title: str = "", dpi: int = ARTIFACT_DPI,
                            width: float = 5.0) -> bytes:
    """Top-label reliability: accuracy against mean confidence per confidence bin (ECE_BINS bins), with
    the diagonal of perfect calibration and the share of rows per bin."""
    from matplotlib.figure import Figure

    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(float)
    bins = np.clip(np.ceil(confidence * ECE_BINS).astype(int) - 1, 0, ECE_BINS - 1)
    rows = np.bincount(bins, minlength=ECE_BINS)
    seen = rows > 0
    accuracy = np.bincount(bins, weights=correct, minlength=ECE_BINS)[seen] / rows[seen]
    mean_conf = np.bincount(bins, weights=confidence, minlength=ECE_BINS)[seen] / rows[seen]
    fig = Figure(figsize=(width, width))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(mean_conf, accuracy, marker="o", label="model")
    ax.bar((np.arange(ECE_BINS) + 0.5) / ECE_BINS, rows / max(len(y_true), 1), width=1 / ECE_BINS, alpha=0.25,
           color="tab:blue", label="share of rows")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (max class probability)")
    ax.set_ylabel("accuracy")
    ece = expected_calibration_error(y_true, proba)
    ax.set_title(title or f"reliability (test split), ECE = {ece:.3f}")
    ax.legend(loc="upper left")
    return figure_png(fig, dpi)
