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


def ece_noise_floor(proba: np.ndarray, n_bins: int = ECE_BINS, n_draws: int = 200, seed: int = 0) -> float:
    """The ECE a perfectly calibrated model with these confidences would still show on this many rows:
    the mean ECE over `n_draws` simulated outcomes where each row is right with probability equal to its
    confidence. The estimator is biased upwards on small samples (|noise| per bin); on a test split of a
    few hundred rows this floor is 0.03-0.05, as large as the bound, so the gate subtracts it."""
    if not len(proba):
        return 0.0
    confidence = proba.max(axis=1)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    onehot = np.zeros((len(confidence), n_bins))
    onehot[np.arange(len(confidence)), bins] = 1.0
    rng = np.random.default_rng(seed)
    correct = (rng.random((n_draws, len(confidence))) < confidence).astype(float)
    gaps = np.abs(correct @ onehot - confidence @ onehot)  # (draws, bins): |sum correct - sum confidence|
    return float(gaps.sum(axis=1).mean() / len(confidence))


def calibration_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """ECE (top-label, ECE_BINS bins), its noise floor on this many rows, the debiased ECE
    (max(0, ece - floor), what the calibration gate compares with its bound), and the multiclass Brier
    score (sklearn: mean over rows of the squared distance between the probability vector and the one-hot
    label, in [0, 2])."""
    if not len(y_true):
        return {"ece": 0.0, "ece_noise_floor": 0.0, "ece_debiased": 0.0, "brier": 0.0}
    ece, floor = expected_calibration_error(y_true, proba), ece_noise_floor(proba)
    return {"ece": ece, "ece_noise_floor": floor, "ece_debiased": max(0.0, ece - floor),
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
