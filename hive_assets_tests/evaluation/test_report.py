"""The validation report as a domain function (no Dagster): metrics, intervals, verdict, champion comparison."""

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from hive_assets.config import CLASSES
from hive_assets.evaluation import build_report, metrics_table_markdown, minimum_metrics


def _rows(n_plans=200, rows_per_plan=2, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(CLASSES, size=n_plans * rows_per_plan)
    return pd.DataFrame({"plan_id": np.repeat([f"p{i}" for i in range(n_plans)], rows_per_plan), "label": labels})


def _proba_for(labels, accuracy, seed=1):
    rng = np.random.default_rng(seed)
    idx = np.array([CLASSES.index(v) for v in labels])
    wrong = rng.random(len(idx)) > accuracy
    pred = np.where(wrong, (idx + rng.integers(1, 3, len(idx))) % 3, idx)
    proba = np.full((len(idx), 3), 0.05)
    proba[np.arange(len(idx)), pred] = 0.90
    return proba, pred


def test_report_metrics_agree_with_sklearn_and_the_gate_follows_them():
    test = _rows()
    proba, pred = _proba_for(test["label"], accuracy=0.85)
    y = np.array([CLASSES.index(v) for v in test["label"]])
    report = build_report(test, proba, champion=None, n_boot=200)
    assert report["n_test"] == 400 and report["n_test_plans"] == 200
    assert np.isclose(report["metrics"]["accuracy"], accuracy_score(y, pred))
    assert np.isclose(report["metrics"]["macro_f1"], f1_score(y, pred, average="macro"))
    for name in minimum_metrics():
        lo, hi = report["intervals"][name]
        assert lo - 1e-9 <= report["metrics"][name] <= hi + 1e-9
    assert report["gate"]["passed"]
    assert "champion_comparison" not in report
    assert "| accuracy |" in metrics_table_markdown(report)


def test_a_weak_model_fails_the_gate_naming_the_metric():
    test = _rows(seed=3)
    proba, _ = _proba_for(test["label"], accuracy=0.40)
    report = build_report(test, proba, champion=None, n_boot=100)
    assert not report["gate"]["passed"]
    failed = {f["metric"] for f in report["gate"]["failures"]}
    assert {"accuracy", "macro_f1"} <= failed
    assert "accuracy" in report["gate"]["summary"]


def test_the_champion_is_compared_on_the_same_rows():
    test = _rows(seed=4)
    proba, _ = _proba_for(test["label"], accuracy=0.90)
    champion_proba = _proba_for(test["label"], accuracy=0.70, seed=9)[0]
    champion_metrics = build_report(test, champion_proba, None, n_boot=50)["metrics"]
    report = build_report(test, proba, {"version": "1"}, champion_proba=champion_proba, n_boot=50)
    comparison = report["champion_comparison"]
    assert np.isclose(comparison["macro_f1_improvement"], report["metrics"]["macro_f1"] - champion_metrics["macro_f1"])
    assert comparison["better"]


def _without_reject(n=45, seed=0):
    """The audit's case: 45 test rows, one per plan, no `reject` row; a model right on 90 % of them that never
    predicts reject."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(["approve", "review_required"], n)
    test = pd.DataFrame({"plan_id": [f"p{i}" for i in range(n)], "label": labels})
    idx = np.array([CLASSES.index(v) for v in labels])
    pred = np.where(rng.random(n) < 0.9, idx, np.where(idx == 0, 2, 0))
    proba = np.full((n, 3), 0.05)
    proba[np.arange(n), pred] = 0.90
    return test, proba, idx, pred


def test_a_class_without_test_rows_is_reported_not_computable_never_0_with_an_interval_0_0():
    import json

    from hive_assets.evaluation import gate_table_text

    test, proba, y, pred = _without_reject()
    report = build_report(test, proba, n_boot=200)
    undefined = {"precision_reject", "recall_reject", "f1_reject", "macro_f1"}
    assert set(report["not_computable"]) == undefined
    assert report["not_computable"]["recall_reject"] == "class reject has no rows among the 45 scored"
    for name in undefined:
        assert report["metrics"][name] is None and name not in report["intervals"]
    # the classes with rows: as computed by hand, with their intervals
    for c in ("approve", "review_required"):
        k = CLASSES.index(c)
        assert np.isclose(report["metrics"][f"recall_{c}"], ((pred == k) & (y == k)).sum() / (y == k).sum())
        assert np.isclose(report["metrics"][f"precision_{c}"], ((pred == k) & (y == k)).sum() / (pred == k).sum())
        assert f"recall_{c}" in report["intervals"]
    assert np.isclose(report["metrics"]["accuracy"], (pred == y).mean()) and report["metrics"]["support_reject"] == 0
    gate = report["gate"]
    assert not gate["passed"]
    assert {f["metric"] for f in gate["failures"]} == {"macro_f1", "precision_reject", "recall_reject"}
    assert "recall_reject could not be computed (class reject has no rows among the 45 scored)" in gate["summary"]
    assert "0.000" not in gate["summary"] and "[0.000, 0.000]" not in gate_table_text(report)
    row = next(line for line in gate_table_text(report).splitlines() if " recall_reject " in line)
    assert row.split()[2:5] == ["n/a", "-", ">="], row
    assert "| recall_reject | n/a | - |" in metrics_table_markdown(report)
    json.dumps(report, allow_nan=False)  # the report is stored and logged as JSON


def test_a_champion_re_scored_on_test_rows_without_a_class_shows_those_deltas_as_not_computable():
    from hive_assets.evaluation import gate_rows

    test, proba, _, _ = _without_reject()
    champion_proba = _without_reject(seed=5)[1]
    report = build_report(test, proba, {"version": "1"}, champion_proba=champion_proba, n_boot=100)
    comparison = report["champion_comparison"]
    assert report["champion"]["metrics"]["recall_reject"] is None
    assert comparison["deltas"]["recall_reject"] is None and "recall_reject" not in comparison["delta_intervals"]
    assert comparison["macro_f1_improvement"] is None and not comparison["better"]
    assert np.isclose(comparison["deltas"]["accuracy"],
                      report["metrics"]["accuracy"] - report["champion"]["metrics"]["accuracy"])
    rows = {r["metric"]: r for r in gate_rows(report)}
    assert rows["recall_reject - champion"]["value"] is None and rows["recall_reject - champion"]["verdict"] == "n/a"
    assert rows["macro_f1 - champion"]["verdict"] == "FAIL"  # a headline metric not shown non-inferior


def test_the_gate_table_shows_a_number_near_its_bound_on_its_side_of_it():
    """"macro_f1 - champion ... [-0.020, -0.006]  CI low >= -0.02  FAIL" read as a contradiction: the lower end
    was -0.02048. Where three decimals print a number equal to its bound, more are shown."""
    from hive_assets.evaluation import gate_table_text, minimum_metrics

    floors = minimum_metrics()
    metrics = {k: min(1.0, v + 0.1) for k, v in floors.items()}
    metrics["macro_f1"] = floors["macro_f1"] - 4e-5  # prints as the floor at three decimals
    report = {"metrics": metrics, "intervals": {k: (v - 0.03, v + 0.03) for k, v in metrics.items()},
              "calibration": {"ece_debiased": 0.01, "bound": 0.05, "passed": True},
              "champion_comparison": {"deltas": {"macro_f1": -0.013},
                                      "delta_intervals": {"macro_f1": (-0.02048, -0.006)}},
              "non_inferiority": {"margin": 0.02, "failures": [{"metric": "macro_f1"}]}}
    rows = {" ".join(line.split()[:2]) if "champion" not in line else "champion": line
            for line in gate_table_text(report).splitlines()[2:]}
    assert "[-0.0205, -0.0060]" in rows["champion"] and "-0.0130" in rows["champion"]
    minimum = rows["minimum_metrics macro_f1"]
    assert f"{floors['macro_f1'] - 4e-5:.5f}" in minimum and "FAIL" in minimum
    assert f" {metrics['accuracy']:.3f} " in rows["minimum_metrics accuracy"]  # far from its bound: three decimals
