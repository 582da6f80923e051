"""Metrics, bootstrap intervals and gates. Statistical claims are checked by simulation, fixed seeds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from hive_assets import evaluation as m
from hive_assets.evaluation._bootstrap import _metrics_from_counts


def _fake_predictions(rng, n, accuracy):
    y = rng.integers(0, 3, size=n)
    correct = rng.random(n) < accuracy
    pred = np.where(correct, y, (y + rng.integers(1, 3, size=n)) % 3)
    proba = np.full((n, 3), 0.1)
    proba[np.arange(n), pred] = 0.8
    return y, proba


def test_bootstrap_replicates_equal_sklearn_on_the_resampled_rows():
    rng = np.random.default_rng(0)
    y, proba = _fake_predictions(rng, 300, 0.7)
    groups = rng.integers(0, 120, size=300)
    # one replicate by hand: resample plans, expand their rows, score with sklearn
    picked = rng.choice(120, size=120, replace=True)
    rows = np.concatenate([np.flatnonzero(groups == g) for g in picked])
    weights = np.bincount(picked, minlength=120).astype(float)
    _, g = np.unique(groups, return_inverse=True)
    present = np.unique(groups)
    w = weights[present]
    cells = np.zeros((len(present), 9))
    pred = proba.argmax(axis=1)
    np.add.at(cells, (g, y * 3 + pred), 1.0)
    conf = np.bincount(g, weights=proba.max(axis=1))
    n = np.bincount(g).astype(float)
    rep = _metrics_from_counts((w @ cells).reshape(1, 3, 3), np.array([w @ conf]), np.array([w @ n]))
    yt, yp = y[rows], pred[rows]
    assert rep["macro_f1"][0] == pytest.approx(f1_score(yt, yp, average="macro"), abs=1e-12)
    assert rep["precision_reject"][0] == pytest.approx(precision_score(yt, yp, labels=[1], average="macro"), abs=1e-12)
    assert rep["recall_approve"][0] == pytest.approx(recall_score(yt, yp, labels=[0], average="macro"), abs=1e-12)
    assert rep["accuracy"][0] == pytest.approx((yt == yp).mean(), abs=1e-12)


def test_point_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y, proba = _fake_predictions(rng, 500, 0.75)
    pm = m.point_metrics(y, proba)
    assert pm["macro_f1"] == pytest.approx(f1_score(y, proba.argmax(1), average="macro"))
    assert pm["confidence_mean"] == pytest.approx(0.8)


def test_bootstrap_interval_covers_the_true_accuracy_about_95_percent_of_the_time():
    """Plans carry 1-3 correlated rows: the cluster bootstrap must still cover ~95%."""
    rng = np.random.default_rng(2)
    true_acc, covered, trials = 0.72, 0, 300
    for t in range(trials):
        n_plans = 150
        sizes = rng.integers(1, 4, size=n_plans)
        plan_ok = rng.random(n_plans) < true_acc  # correlated within a plan
        groups = np.repeat(np.arange(n_plans), sizes)
        y = rng.integers(0, 3, size=len(groups))
        pred = np.where(plan_ok[groups], y, (y + 1) % 3)
        proba = np.full((len(y), 3), 0.1)
        proba[np.arange(len(y)), pred] = 0.8
        lo, hi = m.bootstrap_intervals(y, proba, groups, n_boot=400, seed=t)["accuracy"]
        # the population accuracy weights plans by their expected size (all sizes equally likely)
        covered += lo <= true_acc <= hi
    assert 0.91 <= covered / trials <= 0.985


def test_gates_name_the_failed_metric_and_the_shortfall():
    pm = {name: 0.9 for name in m.minimum_metrics()}
    pm["recall_reject"] = 0.41
    verdict = m.evaluate_gates(pm)
    assert not verdict.passed
    assert [f["metric"] for f in verdict.failures] == ["recall_reject"]
    assert verdict.failures[0]["shortfall"] == pytest.approx(0.19)
    assert "recall_reject = 0.410 < 0.60" in verdict.describe()
    assert m.evaluate_gates({name: 0.9 for name in m.minimum_metrics()}).passed


def test_champion_comparison_needs_two_points_and_no_regression():
    base = {name: 0.80 for name in m.minimum_metrics()}
    assert m.champion_comparison({**base, "macro_f1": 0.825}, base)["better"]
    assert not m.champion_comparison({**base, "macro_f1": 0.815}, base)["better"]
    worse = m.champion_comparison({**base, "macro_f1": 0.85, "recall_reject": 0.75}, base)
    assert not worse["better"] and "recall_reject" in worse["regressions"]
