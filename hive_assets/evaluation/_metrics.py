"""Point metrics on held-out rows: classification metrics with sklearn, and calibration (ECE, Brier)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, precision_recall_fscore_support

from hive_assets.config import CLASSES

K = len(CLASSES)
ECE_BINS = 15


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Top-label ECE: rows binned by confidence (max probability) into `n_bins` equal-width bins on
    [0, 1]; the row-weighted mean over bins of |accuracy - mean confidence|. 0 for a perfectly
    calibrated model; bins are right-closed, a confidence of exactly 0 falls in the first."""
    if not len(y_true):
        return 0.0
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(float)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    gap = np.abs(np.bincount(bins, weights=correct, minlength=n_bins) - np.bincount(bins, weights=confidence, minlength=n_bins))
    return float(gap.sum() / len(y_true))


def calibration_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """ECE (top-label, ECE_BINS bins) and the multiclass Brier score (sklearn: mean over rows of the
    squared distance between the probability vector and the one-hot label, in [0, 2])."""
    if not len(y_true):
        return {"ece": 0.0, "brier": 0.0}
    return {"ece": expected_calibration_error(y_true, proba),
            "brier": float(brier_score_loss(y_true, proba, labels=list(range(K))))}


def point_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Point estimates with sklearn (the reference the bootstrap replicates must agree with)."""
    y_pred = proba.argmax(axis=1)
    prec, rec, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(K)), zero_division=0)
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=list(range(K)), average="macro", zero_division=0)),
        "confidence_mean": float(proba.max(axis=1).mean()) if len(proba) else 0.0,
    }
    for i, c in enumerate(CLASSES):
        out[f"precision_{c}"] = float(prec[i])
        out[f"recall_{c}"] = float(rec[i])
        out[f"f1_{c}"] = float(f1[i])
        out[f"support_{c}"] = int(support[i])
    return out
