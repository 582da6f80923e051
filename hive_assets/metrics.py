"""Held-out metrics with plan-level bootstrap intervals, and the gates of SPEC section 5."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from hive_assets.config import CLASSES

K = len(CLASSES)
MIN_CONFIDENCE_MEAN = 0.70
MIN_MACRO_F1 = 0.65
MIN_ACCURACY = 0.65
MIN_CLASS_PRECISION = 0.60
MIN_CLASS_RECALL = 0.60
PROMOTE_MIN_IMPROVEMENT = 0.02
PROMOTE_MAX_REGRESSION = 0.02


def minimum_metrics() -> dict[str, float]:
    """Metric name -> minimum value, on the test split."""
    floors = {"confidence_mean": MIN_CONFIDENCE_MEAN, "macro_f1": MIN_MACRO_F1, "accuracy": MIN_ACCURACY}
    for c in CLASSES:
        floors[f"precision_{c}"] = MIN_CLASS_PRECISION
        floors[f"recall_{c}"] = MIN_CLASS_RECALL
    return floors


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


@dataclass
class GateVerdict:
    passed: bool
    failures: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        if self.passed:
            return "all minimum metrics met"
        return "; ".join(
            f"{f['metric']} = {f['value']:.3f} < {f['threshold']:.2f} (short by {f['shortfall']:.3f})"
            for f in self.failures
        )


def evaluate_gates(metrics: dict[str, float], floors: dict[str, float] | None = None) -> GateVerdict:
    failures = []
    for name, threshold in (floors or minimum_metrics()).items():
        value = float(metrics.get(name, 0.0))
        if value < threshold:
            failures.append({"metric": name, "value": value, "threshold": threshold,
                             "shortfall": threshold - value})
    return GateVerdict(passed=not failures, failures=failures)


def champion_comparison(challenger: dict[str, float], champion: dict[str, float]) -> dict[str, Any]:
    """`promote_if_better` without A/B: macro-F1 up >= 0.02 and no gated metric down > 0.02."""
    improvement = challenger["macro_f1"] - champion["macro_f1"]
    regressions = {
        name: champion[name] - challenger[name]
        for name in minimum_metrics()
        if name in champion and champion[name] - challenger[name] > PROMOTE_MAX_REGRESSION
    }
    return {
        "macro_f1_improvement": improvement,
        "regressions": regressions,
        "better": improvement >= PROMOTE_MIN_IMPROVEMENT and not regressions,
    }
