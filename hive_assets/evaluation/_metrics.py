"""Point metrics on held-out rows, computed with sklearn (the reference the bootstrap agrees with)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from hive_assets.config import CLASSES

K = len(CLASSES)


def point_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Point estimates with sklearn (the reference the bootstrap below must agree with)."""
    y_pred = proba.argmax(axis=1)
    prec, rec, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(K)), zero_division=0)
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=list(range(K)), average="macro", zero_division=0)),
        "confidence_mean": float(proba.max(axis=1).mean()) if len(proba) else 0.0,
    }
    for i, c in enumerate(CLASSES):
        out[f"precision_{c}"] = float(prec[i])
        out[f"recall_{c}"] = float(rec[i])
        out[f"f1_{c}"] = float(f1[i])
        out[f"support_{c}"] = int(support[i])
    return out
