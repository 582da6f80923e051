"""The validation report: held-out metrics with intervals, calibration, the champion re-scored on the same
rows with paired intervals of the differences, and every gate's verdict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from hive_assets.evaluation._bootstrap import DEFAULT_N_BOOT, bootstrap_intervals, paired_bootstrap_deltas
from hive_assets.evaluation._gates import (
    MAX_ECE, NON_INFERIORITY_HEADLINE, NON_INFERIORITY_MARGIN, GateVerdict, calibration_gate, champion_comparison,
    _digits, evaluate_gates, minimum_metrics, non_inferiority,
)
from hive_assets.evaluation._metrics import calibration_metrics, not_computable, point_metrics
from hive_assets.training import encode_labels


def build_report(test: pd.DataFrame, proba: np.ndarray, champion: dict[str, Any] | None = None,
                 champion_proba: np.ndarray | None = None, n_boot: int = DEFAULT_N_BOOT, seed: int = 0,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The validation report of a model whose test-split probabilities are `proba`.

    `champion` ({"version": ...}, or None) with `champion_proba` (its probabilities on the same rows)
    adds the champion's metrics, per-metric deltas (challenger - champion) with paired plan-bootstrap
    intervals, `champion_comparison` (the promote_if_better rule; `better` also requires
    non-inferiority) and `non_inferiority`. Keys: n_test, n_test_plans, metrics, intervals, calibration,
    minimum_metrics, gate (the blocking verdict: minimum metrics and calibration), champion,
    champion_comparison (with a champion), non_inferiority, not_computable (metric -> why it is None in
    `metrics`, with no interval: a class without test rows; such a metric fails its gate as not computable).
    `progress` receives the bootstraps' progress lines.
    """
    y = encode_labels(test["label"])
    groups = test["plan_id"].to_numpy()
    point = point_metrics(y, proba)
    undefined = not_computable(y)
    intervals = bootstrap_intervals(y, proba, groups, n_boot=n_boot, seed=seed, progress=progress)
    calibration = calibration_metrics(y, proba)
    calibration_verdict = calibration_gate(calibration["ece"], noise_floor=calibration["ece_noise_floor"])
    minimum = evaluate_gates(point, intervals=intervals, not_computable=undefined)
    report: dict[str, Any] = {
        "n_test": int(len(test)),
        "n_test_plans": int(test["plan_id"].nunique()),
        "metrics": point,
        "intervals": intervals,
        "not_computable": undefined,
        "calibration": {**calibration, "bound": MAX_ECE, **calibration_verdict.as_dict()},
        "minimum_metrics": minimum.as_dict(),
        # the blocking verdict: what registration requires
        "gate": GateVerdict(minimum.passed and calibration_verdict.passed,
                            minimum.failures + calibration_verdict.failures,
                            success_text=f"all minimum metrics met; {calibration_verdict.describe()}").as_dict(),
        "champion": dict(champion) if champion else None,
        "non_inferiority": {"applicable": False, "passed": True, "failures": [], "margin": NON_INFERIORITY_MARGIN,
                            "summary": "no comparable champion"},
    }
    if champion is not None and champion_proba is not None:
        champion_point = point_metrics(y, champion_proba)
        report["champion"]["metrics"] = champion_point
        # the same rows: a metric not computable for one model is not for the other either
        deltas = {k: None if point[k] is None or champion_point[k] is None else point[k] - champion_point[k]
                  for k in minimum_metrics()}
        delta_intervals = paired_bootstrap_deltas(y, proba, champion_proba, groups, n_boot=n_boot, seed=seed,
                                                  progress=progress)
        verdict = non_inferiority(deltas, delta_intervals)
        comparison = champion_comparison(point, champion_point)
        comparison.update({"deltas": deltas,
                           "delta_intervals": {k: delta_intervals[k] for k in minimum_metrics()
                                               if k in delta_intervals},
                           "non_inferior": verdict.passed,
                           "better": comparison["better"] and verdict.passed})
        report["champion_comparison"] = comparison
        report["non_inferiority"] = {"applicable": True, "margin": NON_INFERIORITY_MARGIN,
                                     "headline_metrics": list(NON_INFERIORITY_HEADLINE), **verdict.as_dict()}
    return report


# a value that cannot be computed on the test rows (the report's `not_computable` says why)
NOT_COMPUTABLE = "n/a"


def gate_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per gated quantity: gate, metric, value (None: not computable), interval (or None), bound,
    verdict (pass/FAIL; n/a for a champion delta not computable that the rule does not fail)."""
    pm, ci = report["metrics"], report["intervals"]
    # `digits`: decimals that show the compared number on its side of the bound (-0.02048 printed -0.020 beside
    # "CI low >= -0.02 FAIL")
    rows = [{"gate": "minimum_metrics", "metric": k, "value": pm[k], "interval": ci.get(k), "bound": f">= {v:.2f}",
             "verdict": "pass" if pm[k] is not None and pm[k] >= v else "FAIL",
             "digits": _digits(pm[k], v) if pm[k] is not None else 3} for k, v in minimum_metrics().items()]
    cal = report["calibration"]
    rows.append({"gate": "calibration", "metric": "ece (debiased)", "value": cal["ece_debiased"], "interval": None,
                 "bound": f"<= {cal['bound']:.2f}", "verdict": "pass" if cal["passed"] else "FAIL", "digits": 3})
    comparison = report.get("champion_comparison")
    if comparison:
        failed = {f["metric"] for f in report["non_inferiority"]["failures"]}
        margin = report["non_inferiority"]["margin"]
        for k, delta in comparison["deltas"].items():
            rule = "CI low" if k in NON_INFERIORITY_HEADLINE else "CI high"
            interval = comparison["delta_intervals"].get(k)
            compared = None if interval is None else interval[0 if rule == "CI low" else 1]
            rows.append({"gate": "non_inferiority", "metric": f"{k} - champion", "value": delta,  # None: n/a
                         "interval": interval, "bound": f"{rule} >= -{margin:.2f}",
                         "verdict": "FAIL" if k in failed else NOT_COMPUTABLE if delta is None else "pass",
                         "digits": _digits(compared, -margin) if compared is not None else 3})
    return rows


def _fmt_interval(interval: Any, digits: int = 3) -> str:
    return f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]" if interval is not None else "-"


def _fmt_value(value: float | None, digits: int = 3) -> str:
    return NOT_COMPUTABLE if value is None else f"{value:.{digits}f}"


def gate_table_text(report: dict[str, Any]) -> str:
    """The gate table as aligned text: metric, value, 95% interval, bound, verdict. Each column is as wide
    as its longest cell and two spaces ("precision_review_required - champion" ran into the value)."""
    header = ("gate", "metric", "value", "95% CI", "bound", "verdict")
    cells = [header] + [(r["gate"], r["metric"], _fmt_value(r["value"], r["digits"]),
                         _fmt_interval(r["interval"], r["digits"]), r["bound"], r["verdict"])
                        for r in gate_rows(report)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(cell.rjust(w) if i == 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))

    lines = [line(row).rstrip() for row in cells]
    return "\n".join([lines[0], "-" * max(map(len, lines)), *lines[1:]])


def metrics_table_markdown(report: dict[str, Any]) -> str:
    """The gate table as markdown: gate, metric, value, 95% interval, bound, verdict."""
    return "| gate | metric | value | 95% CI | bound | verdict |\n|---|---|---|---|---|---|\n" + "\n".join(
        f"| {r['gate']} | {r['metric']} | {_fmt_value(r['value'])} | {_fmt_interval(r['interval'])} | {r['bound']} | "
        f"{r['verdict']} |" for r in gate_rows(report))
