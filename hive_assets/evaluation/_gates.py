"""The gates of SPEC section 5: minimum metrics, calibration, champion comparison and non-inferiority,
and the data gates. Each verdict names, per failure, the metric, its value, the bound and its interval."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hive_assets.config import CLASSES, TIE_TOLERANCE

MIN_CONFIDENCE_MEAN = 0.70
MIN_MACRO_F1 = 0.65
MIN_ACCURACY = 0.65
MIN_CLASS_PRECISION = 0.60
MIN_CLASS_RECALL = 0.60
MAX_ECE = 0.05
PROMOTE_MIN_IMPROVEMENT = 0.02
PROMOTE_MAX_REGRESSION = 0.02
# Non-inferiority: the headline metrics must be shown no worse than the champion by more than the margin
# (lower end of the paired 95% interval above -margin); the per-class metrics, whose intervals are wide on
# a test split of a few hundred rows, only fail when shown worse by more than the margin (upper end below it).
NON_INFERIORITY_MARGIN = PROMOTE_MAX_REGRESSION
NON_INFERIORITY_HEADLINE = ("macro_f1", "accuracy")
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


def _interval_text(interval: Any) -> str:
    return f" (95% CI [{interval[0]:.3f}, {interval[1]:.3f}])" if interval is not None else ""


@dataclass
class GateVerdict:
    passed: bool
    failures: list[dict[str, Any]] = field(default_factory=list)
    success_text: str = "all minimum metrics met"

    def describe(self) -> str:
        if self.passed:
            return self.success_text
        return "; ".join(f["text"] for f in self.failures)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "failures": self.failures, "summary": self.describe()}


def _digits(value: float, bound: float) -> int:
    """Decimals that show `value` on its side of `bound`: 3, more when 3 would print it equal ("ECE 0.050 >
    0.05 (over by 0.000)")."""
    digits = 3
    while digits < 8 and round(abs(value - bound), digits) == 0:
        digits += 1
    return digits


def evaluate_gates(metrics: dict[str, float | None], floors: dict[str, float] | None = None,
                   intervals: dict[str, tuple[float, float]] | None = None,
                   not_computable: dict[str, str] | None = None) -> GateVerdict:
    """Every metric under its floor is a failure: metric, value, threshold, shortfall, interval. A metric
    that is None or not finite fails as not computable, with its reason from `not_computable`."""
    failures = []
    for name, threshold in (floors or minimum_metrics()).items():
        raw = metrics.get(name, 0.0)
        value = float("nan") if raw is None else float(raw)
        if not math.isfinite(value):  # NaN compares False with any bound: it passed as if it were above
            reason = (not_computable or {}).get(name) or str(raw)
            failures.append({"metric": name, "value": None, "threshold": threshold, "shortfall": None,
                             "interval": None, "reason": reason,
                             "text": f"{name} could not be computed ({reason}): >= {threshold:.2f} not shown"})
        elif value < threshold:
            interval = (intervals or {}).get(name)
            failures.append({"metric": name, "value": value, "threshold": threshold, "shortfall": threshold - value,
                             "interval": list(interval) if interval is not None else None,
                             "text": f"{name} = {value:.{(d := _digits(value, threshold))}f} < {threshold:.2f} "
                                     f"(short by {threshold - value:.{d}f})"
                                     + _interval_text(interval)})
    return GateVerdict(passed=not failures, failures=failures)


def calibration_gate(ece: float, bound: float = MAX_ECE, noise_floor: float = 0.0) -> GateVerdict:
    """Expected calibration error on the test split at most `bound` (blocking), after subtracting the
    estimator's `noise_floor` on this many rows (see `ece_noise_floor`)."""
    if not (math.isfinite(ece) and math.isfinite(noise_floor)):  # NaN <= bound is False, max(0, NaN) is 0.0
        return GateVerdict(False, [{"metric": "ece", "value": None, "raw_value": None, "noise_floor": None,
                                    "threshold": bound, "excess": None, "interval": None,
                                    "text": f"ECE could not be computed (raw {ece}, noise floor {noise_floor}): "
                                            f"<= {bound:.2f} not shown"}])
    debiased = max(0.0, ece - noise_floor)
    # the compared value first, then where it comes from: "debiased ECE 0.034 <= 0.05 (raw ECE 0.054 minus
    # noise floor 0.020)" never reads as the raw value passing a bound it exceeds
    compared = f"debiased ECE {debiased:.3f}" if noise_floor else f"ECE {ece:.3f}"
    origin = f"raw ECE {ece:.3f} minus noise floor {noise_floor:.3f}" if noise_floor else ""
    if debiased <= bound:
        return GateVerdict(True, success_text=f"{compared} <= {bound:.2f}" + (f" ({origin})" if origin else ""))
    if (d := _digits(debiased, bound)) > 3:  # shown equal at 3 decimals: show the difference
        compared = f"debiased ECE {debiased:.{d}f}" if noise_floor else f"ECE {ece:.{d}f}"
    over = f"over by {debiased - bound:.{d}f}"
    return GateVerdict(False, [{"metric": "ece", "value": debiased, "raw_value": ece, "noise_floor": noise_floor,
                                "threshold": bound, "excess": debiased - bound, "interval": None,
                                "text": f"{compared} > {bound:.2f} ({over}" + (f"; {origin})" if origin else ")")}])


def champion_comparison(challenger: dict[str, float], champion: dict[str, float]) -> dict[str, Any]:
    """`promote_if_better` without A/B: macro-F1 up >= 0.02 and no gated metric down > 0.02 (point estimates).
    `build_report` also requires non-inferiority for `better`. A macro-F1 that is None (not computable) shows
    no improvement: not better; a per-class metric that is None shows no regression."""
    improvement = None if challenger["macro_f1"] is None or champion["macro_f1"] is None else \
        challenger["macro_f1"] - champion["macro_f1"]
    regressions = {
        name: champion[name] - challenger[name]
        for name in minimum_metrics()
        if champion.get(name) is not None and challenger.get(name) is not None
        and champion[name] - challenger[name] > PROMOTE_MAX_REGRESSION + TIE_TOLERANCE
    }
    return {
        "macro_f1_improvement": improvement,
        "regressions": regressions,
        "better": improvement is not None and improvement >= PROMOTE_MIN_IMPROVEMENT - TIE_TOLERANCE
        and not regressions,
    }


def non_inferiority(deltas: dict[str, float], delta_intervals: dict[str, tuple[float, float]],
                    margin: float = NON_INFERIORITY_MARGIN) -> GateVerdict:
    """Challenger vs champion on the same rows, from the paired-bootstrap intervals of (challenger - champion):
    a headline metric (NON_INFERIORITY_HEADLINE) fails unless its interval's lower end is >= -margin; any
    other minimum metric fails when its interval's upper end is < -margin. A headline metric whose delta is
    None (not computable on these rows) fails: it is not shown non-inferior."""
    failures = []
    for name in minimum_metrics():
        if name in NON_INFERIORITY_HEADLINE and name in deltas and deltas[name] is None:
            failures.append({"metric": name, "value": None, "threshold": -margin, "interval": None,
                             "text": f"{name} delta vs champion could not be computed on these rows: "
                                     "non-inferiority not shown"})
            continue
        if name not in delta_intervals or deltas.get(name) is None:
            continue
        lo, hi = delta_intervals[name]
        headline = name in NON_INFERIORITY_HEADLINE
        if (lo < -margin) if headline else (hi < -margin):
            rule = "lower" if headline else "upper"
            failures.append({
                "metric": name, "value": float(deltas[name]), "threshold": -margin, "interval": [lo, hi],
                "text": f"{name} delta = {deltas[name]:+.3f} vs champion, 95% CI [{lo:+.3f}, {hi:+.3f}]: "
                        f"{rule} end below -{margin:.2f}",
            })
    return GateVerdict(not failures, failures, success_text=f"non-inferior to the champion (margin {margin:.2f})")


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
    if "split" in frame and not problems:  # (an empty frame has problems above)
        # the split is by time: a class that stopped being used is absent from the latest plans (the test
        # split is the latest); the calibration and the model choice on validation cannot score a class they
        # never see, nor the test gate measure its precision and recall (they would read 0.000, CI [0, 0])
        consequence = {"train": "the model cannot learn it",
                       "validation": "calibration and the model choice cannot score it",
                       "test": "the gate cannot measure its precision and recall"}
        for part, cannot in consequence.items():
            in_part = frame["split"] == part
            present = set(frame.loc[in_part, "label"])
            if missing := [c for c in CLASSES if c not in present]:
                problems.append(f"class {', '.join(missing)} has no rows in the {part} split ({int(in_part.sum())} "
                                f"rows, split by time): {cannot}")
    return problems
