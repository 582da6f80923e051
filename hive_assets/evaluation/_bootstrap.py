"""Percentile intervals from resampling plans (clusters), vectorised (SPEC section 5).

A replicate draws as many plans as the test split has, with replacement, and keeps every row of each
drawn plan (rows of one plan are correlated: resampling rows would make the intervals too narrow).
Each metric of a replicate is a function of the replicate's confusion counts and confidence sum, and
those are sums over plans, so B replicates are one (B x plans) @ (plans x cells) product with the
multinomial plan counts as weights. `paired_bootstrap_deltas` applies the same plan draws to two
models scored on the same rows, so the interval of a difference reflects only how the models differ.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hive_assets.config import CLASSES
from hive_assets.evaluation._metrics import K

DEFAULT_N_BOOT = 1000
PROGRESS_BLOCK = 250  # replicates per block when progress is reported

Progress = Callable[[str], None]


def _metrics_from_counts(conf: np.ndarray, conf_sum: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
    """conf: (B, K, K) confusion counts [true, pred]; conf_sum, n: (B,)."""
    tp = np.einsum("bkk->bk", conf)
    pred_tot = conf.sum(axis=1)
    true_tot = conf.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_tot > 0, tp / pred_tot, 0.0)
        recall = np.where(true_tot > 0, tp / true_tot, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        # a class without rows in a replicate has no per-class metric there, nor a macro-F1
        # (`not_computable`): NaN, left out of the percentiles, rather than a 0 that drags the interval down
        absent = true_tot == 0
        precision, recall, f1 = (np.where(absent, np.nan, v) for v in (precision, recall, f1))
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


def _plan_weights(groups: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(plan index of each row, (n_boot, plans) multinomial counts of each plan in each replicate)."""
    _, g = np.unique(groups, return_inverse=True)
    n_groups = int(g.max()) + 1
    rng = np.random.default_rng(seed)
    return g, rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot).astype(float)


def _replicates(y_true: np.ndarray, proba: np.ndarray, g: np.ndarray, weights: np.ndarray,
                progress: Progress | None = None, what: str = "bootstrap") -> dict[str, np.ndarray]:
    """Metrics of every replicate (row of `weights`). With `progress`, the product runs in blocks of
    PROGRESS_BLOCK replicates with one line per block (same result: the rows are independent)."""
    n_groups = weights.shape[1]
    cells = np.zeros((n_groups, K * K))
    np.add.at(cells, (g, y_true * K + proba.argmax(axis=1)), 1.0)
    conf_by_group = np.bincount(g, weights=proba.max(axis=1), minlength=n_groups)
    rows_by_group = np.bincount(g, minlength=n_groups).astype(float)
    block = PROGRESS_BLOCK if progress is not None else max(1, len(weights))
    parts = []
    for start in range(0, len(weights), block):
        w = weights[start:start + block]
        parts.append(_metrics_from_counts((w @ cells).reshape(len(w), K, K), w @ conf_by_group, w @ rows_by_group))
        if progress is not None:
            progress(f"{what}: {start + len(w)} / {len(weights)} replicates over {n_groups} plans")
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _percentiles(reps: dict[str, np.ndarray], level: float) -> dict[str, tuple[float, float]]:
    """Percentile interval of each metric over the replicates where it is defined; a metric defined in none
    (a class without rows in the scored split) has no interval and no key."""
    alpha = (1.0 - level) / 2.0
    out = {}
    for name, values in reps.items():
        defined = values[np.isfinite(values)]
        if len(defined):
            out[name] = (float(np.quantile(defined, alpha)), float(np.quantile(defined, 1.0 - alpha)))
    return out


def bootstrap_intervals(
    y_true: np.ndarray, proba: np.ndarray, groups: np.ndarray, n_boot: int = DEFAULT_N_BOOT, seed: int = 0,
    level: float = 0.95, progress: Progress | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals (`level`) of every metric of `point_metrics` (but supports), resampling plans;
    none for a metric of `not_computable`. `progress` receives one line per block of replicates."""
    if len(y_true) == 0:
        return {}
    g, weights = _plan_weights(groups, n_boot, seed)
    return _percentiles(_replicates(np.asarray(y_true), proba, g, weights, progress, "bootstrap"), level)


def paired_bootstrap_deltas(
    y_true: np.ndarray, proba: np.ndarray, reference_proba: np.ndarray, groups: np.ndarray,
    n_boot: int = DEFAULT_N_BOOT, seed: int = 0, level: float = 0.95, progress: Progress | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of metric(proba) - metric(reference_proba) on the same rows, both models
    scored on the same resampled plans in every replicate (paired)."""
    if len(y_true) == 0:
        return {}
    g, weights = _plan_weights(groups, n_boot, seed)
    y_true = np.asarray(y_true)
    a = _replicates(y_true, proba, g, weights, progress, "paired bootstrap (model)")
    b = _replicates(y_true, reference_proba, g, weights, progress, "paired bootstrap (champion)")
    return _percentiles({name: a[name] - b[name] for name in a}, level)
