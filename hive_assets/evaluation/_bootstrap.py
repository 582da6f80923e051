"""Percentile intervals from resampling plans (clusters), vectorised (SPEC section 5)."""

from __future__ import annotations

import numpy as np

from hive_assets.config import CLASSES
from hive_assets.evaluation._metrics import K


def _metrics_from_counts(conf: np.ndarray, conf_sum: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
    """conf: (B, K, K) confusion counts [true, pred]; conf_sum, n: (B,)."""
    tp = np.einsum("bkk->bk", conf)
    pred_tot = conf.sum(axis=1)
    true_tot = conf.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_tot > 0, tp / pred_tot, 0.0)
        recall = np.where(true_tot > 0, tp / true_tot, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        out = {
            "accuracy": np.where(n > 0, tp.sum(axis=1) / n, 0.0),
            "macro_f1": f1.mean(axis=1),
            "confidence_mean": np.where(n > 0, conf_sum / n, 0.0),
        }
    for i, c in enumerate(CLASSES):
        out[f"precision_{c}"] = precision[:, i]
        out[f"recall_{c}"] = recall[:, i]
        out[f"f1_{c}"] = f1[:, i]
    return out


def bootstrap_intervals(
    y_true: np.ndarray, proba: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals from resampling *plans* (clusters) with replacement.

    Vectorised: per-plan confusion counts, then each replicate is a weighted sum of them with
    multinomial plan weights, so 1,000 replicates cost one matrix product.
    """
    if len(y_true) == 0:
        return {}
    y_pred = proba.argmax(axis=1)
    _, g = np.unique(groups, return_inverse=True)
    n_groups = int(g.max()) + 1
    cells = np.zeros((n_groups, K * K))
    np.add.at(cells, (g, y_true * K + y_pred), 1.0)
    conf_by_group = np.bincount(g, weights=proba.max(axis=1), minlength=n_groups)
    rows_by_group = np.bincount(g, minlength=n_groups).astype(float)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot).astype(float)
    reps = _metrics_from_counts((weights @ cells).reshape(n_boot, K, K), weights @ conf_by_group, weights @ rows_by_group)
    alpha = (1.0 - level) / 2.0
    return {name: (float(np.quantile(v, alpha)), float(np.quantile(v, 1.0 - alpha))) for name, v in reps.items()}
