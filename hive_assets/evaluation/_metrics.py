"""Point metrics on held-out rows: classification metrics with sklearn, and calibration (ECE, Brier)."""

from __future__ import annotations

import numpy as np

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
    from sklearn.metrics import brier_score_loss  # on first use, not at the location's load (hive_assets.training)

    ece, floor = expected_calibration_error(y_true, proba), ece_noise_floor(proba)
    return {"ece": ece, "ece_noise_floor": floor, "ece_debiased": max(0.0, ece - floor),
            "brier": float(brier_score_loss(y_true, proba, labels=list(range(K))))}


def not_computable(y_true: np.ndarray) -> dict[str, str]:
    """Metric name -> why it cannot be computed on rows labelled `y_true`: a class without rows has no recall
    (0 / 0), no precision or F1 that says anything about the class (any prediction of it is wrong by
    construction), and macro-F1 is an average over every class. sklearn's zero_division=0 would report
    0.000 for them, and the bootstrap an interval [0, 0]: certainty about a number that does not exist."""
    present = set(np.asarray(y_true).tolist())
    missing = [c for i, c in enumerate(CLASSES) if i not in present]
    reasons = {f"{kind}_{c}": f"class {c} has no rows among the {len(y_true)} scored"
               for c in missing for kind in ("precision", "recall", "f1")}
    if missing:
        reasons["macro_f1"] = f"the mean over all {K} classes, and class {', '.join(missing)} has no rows among " \
                              f"the {len(y_true)} scored"
    return reasons


def point_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float | None]:
    """Point estimates with sklearn (the reference the bootstrap replicates must agree with). A metric of
    `not_computable` is None; a class with rows that the model never predicts keeps sklearn's precision 0
    (zero_division=0: its recall, 0, fails the gate either way)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    y_pred = proba.argmax(axis=1)
    prec, rec, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(K)), zero_division=0)
    undefined = not_computable(y_true)
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": None if "macro_f1" in undefined else
        float(f1_score(y_true, y_pred, labels=list(range(K)), average="macro", zero_division=0)),
        "confidence_mean": float(proba.max(axis=1).mean()) if len(proba) else 0.0,
    }
    for i, c in enumerate(CLASSES):
        for kind, values in (("precision", prec), ("recall", rec), ("f1", f1)):
            out[f"{kind}_{c}"] = None if f"{kind}_{c}" in undefined else float(values[i])
        out[f"support_{c}"] = int(support[i])
    return out
