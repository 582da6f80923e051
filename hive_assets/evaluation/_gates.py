"""The gates of SPEC section 5: minimum metrics, champion comparison, and the data gates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hive_assets.config import CLASSES

MIN_CONFIDENCE_MEAN = 0.70
MIN_MACRO_F1 = 0.65
MIN_ACCURACY = 0.65
MIN_CLASS_PRECISION = 0.60
MIN_CLASS_RECALL = 0.60
PROMOTE_MIN_IMPROVEMENT = 0.02
PROMOTE_MAX_REGRESSION = 0.02
# data gates
DEFAULT_MIN_SAMPLES = 10_000  # collected rows under this: a warning
DEFAULT_MIN_TRAINING_SAMPLES = 300  # labelled rows under this: training is blocked
MIN_CLASS_SHARE = 0.05  # a class under this share of the labels: training is blocked


def minimum_metrics() -> dict[str, float]:
    """Metric name -> minimum value, on the test split."""
    floors = {"confidence_mean": MIN_CONFIDENCE_MEAN, "macro_f1": MIN_MACRO_F1, "accuracy": MIN_ACCURACY}
    for c in CLASSES:
        floors[f"precision_{c}"] = MIN_CLASS_PRECISION
        floors[f"recall_{c}"] = MIN_CLASS_RECALL
    return floors


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


def training_data_problems(frame: pd.DataFrame, min_training_samples: int = DEFAULT_MIN_TRAINING_SAMPLES) -> list[str]:
    """Why a labelled frame cannot be trained on (SPEC section 5 data gates); empty when it can."""
    problems = []
    if len(frame) < min_training_samples:
        problems.append(f"{len(frame)} labelled rows < min_training_samples {min_training_samples}")
    shares = frame["label"].value_counts(normalize=True) if len(frame) else pd.Series(dtype=float)
    for c in CLASSES:
        share = float(shares.get(c, 0.0))
        if share < MIN_CLASS_SHARE:
            problems.append(f"class {c} is {share:.1%} of labels (< {MIN_CLASS_SHARE:.0%})")
    return problems
