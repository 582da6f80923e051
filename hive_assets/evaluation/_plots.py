"""The images logged with a training run: confusion matrix and reliability diagram, as PNG bytes.

Drawn on a bare matplotlib `Figure` with the Agg canvas (no pyplot, no display, no global backend state),
so they render the same in a Dagster worker, a test and a headless server.
"""

from __future__ import annotations

import io

import numpy as np

from hive_assets.config import CLASSES
from hive_assets.evaluation._metrics import ECE_BINS, expected_calibration_error


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def confusion_matrix_png(y_true: np.ndarray, y_pred: np.ndarray, title: str = "") -> bytes:
    """Counts per (true, predicted) class, rows normalised in the colour, counts as text."""
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    fig = Figure(figsize=(5, 4.2))
    ax = fig.add_subplot()
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=list(range(len(CLASSES))),
                                            display_labels=list(CLASSES), ax=ax, colorbar=False, cmap="Blues")
    ax.set_title(title or "confusion matrix (test split)")
    return _png(fig)


def reliability_diagram_png(y_true: np.ndarray, proba: np.ndarray, title: str = "") -> bytes:
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
    fig = Figure(figsize=(5, 5))
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
    return _png(fig)
