"""The validation report: held-out metrics with intervals, the gate verdict, the champion on the same rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hive_assets.evaluation._bootstrap import bootstrap_intervals
from hive_assets.evaluation._gates import champion_comparison, evaluate_gates, minimum_metrics
from hive_assets.evaluation._metrics import point_metrics
from hive_assets.training import encode_labels


def build_report(test: pd.DataFrame, proba: np.ndarray, champion: dict[str, Any] | None, n_boot: int = 1000,
                 seed: int = 0) -> dict[str, Any]:
    y = encode_labels(test["label"])
    point = point_metrics(y, proba)
    intervals = bootstrap_intervals(y, proba, test["plan_id"].to_numpy(), n_boot=n_boot, seed=seed)
    verdict = evaluate_gates(point)
    report = {
        "n_test": int(len(test)),
        "n_test_plans": int(test["plan_id"].nunique()),
        "metrics": point,
        "intervals": intervals,
        "gate": {"passed": verdict.passed, "failures": verdict.failures, "summary": verdict.describe()},
        "champion": champion,
    }
    if champion and champion.get("metrics"):
        report["champion_comparison"] = champion_comparison(point, champion["metrics"])
    return report


def metrics_table_markdown(report: dict[str, Any]) -> str:
    """The gated metrics as a markdown table: metric, value, 95% interval, minimum."""
    pm, ci = report["metrics"], report["intervals"]
    return "| metric | value | 95% CI | minimum |\n|---|---|---|---|\n" + "\n".join(
        f"| {k} | {pm[k]:.3f} | [{ci[k][0]:.3f}, {ci[k][1]:.3f}] | {v:.2f} |" for k, v in minimum_metrics().items())
