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
