"""Metrics, bootstrap intervals, calibration and the gates. The bootstrap is checked against an explicit
resampling loop scored with sklearn, and its coverage by simulation with fixed seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from hive_assets import evaluation as m
from hive_assets.config import CLASSES
from hive_assets.registry import alias_for_new_version

METRICS = ["accuracy", "macro_f1", "confidence_mean"] + [f"{k}_{c}" for k in ("precision", "recall") for c in CLASSES]


def _fake_predictions(rng, n, accuracy):
    y = rng.integers(0, 3, size=n)
    correct = rng.random(n) < accuracy
    pred = np.where(correct, y, (y + rng.integers(1, 3, size=n)) % 3)
    proba = np.full((n, 3), 0.1)
    proba[np.arange(n), pred] = 0.8
    return y, proba


def _clustered(rng, n_plans, class_shares=(0.45, 0.30, 0.25)):
    """Plans of 1-4 rows; each plan has its own chance of being judged right (correlated rows)."""
    sizes = rng.integers(1, 5, size=n_plans)
    groups = np.repeat(np.arange(n_plans), sizes)
    plan_skill = rng.beta(6, 2, size=n_plans)
    y = rng.choice(3, size=len(groups), p=class_shares)
    correct = rng.random(len(groups)) < plan_skill[groups]
    pred = np.where(correct, y, (y + rng.integers(1, 3, size=len(groups))) % 3)
    confidence = rng.uniform(0.5, 0.95, size=len(groups))
    proba = np.zeros((len(groups), 3))
    proba[np.arange(len(groups)), pred] = confidence
    for k in range(3):  # the rest spread over the other classes
        proba[:, k] = np.where(pred == k, proba[:, k], (1 - confidence) / 2)
    return y, proba, groups


def _sklearn_metrics(y, proba) -> dict[str, float]:
    pred = proba.argmax(axis=1)
    prec, rec, _, _ = precision_recall_fscore_support(y, pred, labels=[0, 1, 2], zero_division=0)
    out = {"accuracy": float((y == pred).mean()), "confidence_mean": float(proba.max(axis=1).mean()),
           "macro_f1": f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0)}
    for i, c in enumerate(CLASSES):
        out[f"precision_{c}"], out[f"recall_{c}"] = prec[i], rec[i]
    return out


def _loop_bootstrap(y, probas, groups, n_boot, seed):
    """The slow, explicit cluster bootstrap: draw plans with replacement, stack their rows, score with sklearn."""
    rng = np.random.default_rng(seed)
    plans = np.unique(groups)
    rows_of = {p: np.flatnonzero(groups == p) for p in plans}
    reps = []
    for _ in range(n_boot):
        rows = np.concatenate([rows_of[p] for p in rng.choice(plans, size=len(plans), replace=True)])
        reps.append([_sklearn_metrics(y[rows], proba[rows]) for proba in probas])
    return reps


def test_point_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y, proba = _fake_predictions(rng, 500, 0.75)
    pm = m.point_metrics(y, proba)
    assert pm["macro_f1"] == pytest.approx(f1_score(y, proba.argmax(1), average="macro"))
    assert pm["confidence_mean"] == pytest.approx(0.8)


def test_bootstrap_intervals_agree_with_an_explicit_resampling_loop():
    rng = np.random.default_rng(0)
    y, proba, groups = _clustered(rng, 250)
    fast = m.bootstrap_intervals(y, proba, groups, n_boot=2000, seed=0)
    reps = _loop_bootstrap(y, [proba], groups, n_boot=600, seed=1)
    for name in METRICS:
        values = np.array([r[0][name] for r in reps])
        lo, hi = np.quantile(values, [0.025, 0.975])
        # two Monte-Carlo estimates of the same quantiles: agree within their sampling error
        assert fast[name] == pytest.approx((lo, hi), abs=0.02), name
    # resampling plans, not rows: with correlated rows a row bootstrap would be narrower
    row_level = m.bootstrap_intervals(y, proba, np.arange(len(y)), n_boot=2000, seed=0)
    assert np.diff(fast["accuracy"]) > 1.05 * np.diff(row_level["accuracy"])


def test_paired_bootstrap_deltas_agree_with_an_explicit_resampling_loop():
    rng = np.random.default_rng(4)
    y, champion, groups = _clustered(rng, 250)
    challenger = champion.copy()
    flip = rng.random(len(y)) < 0.15  # the challenger changes 15% of the answers
    challenger[flip] = np.roll(champion[flip], 1, axis=1)
    fast = m.paired_bootstrap_deltas(y, challenger, champion, groups, n_boot=2000, seed=0)
    reps = _loop_bootstrap(y, [challenger, champion], groups, n_boot=600, seed=2)
    for name in ("accuracy", "macro_f1", "recall_reject", "precision_approve"):
        values = np.array([r[0][name] - r[1][name] for r in reps])
        assert fast[name] == pytest.approx(tuple(np.quantile(values, [0.025, 0.975])), abs=0.02), name
    # pairing: the interval of the difference is narrower than independent intervals would imply
    a = m.bootstrap_intervals(y, challenger, groups, n_boot=2000, seed=7)["accuracy"]
    b = m.bootstrap_intervals(y, champion, groups, n_boot=2000, seed=8)["accuracy"]
    assert np.diff(fast["accuracy"]) < np.hypot(np.diff(a), np.diff(b))


def test_a_replicate_without_rows_of_a_class_leaves_that_class_s_metrics_out_of_the_interval():
    """A class in 2 of 45 plans is absent from about 13 % of the replicates ((43/45)^45): its recall,
    precision and the macro-F1 do not exist there (`not_computable`). Counted as 0 they pulled the interval
    down to 0 (recall [0, 1] for a class both of whose rows were right); the explicit loop scores with
    sklearn only the replicates that hold the class, and without any row of it there is no interval."""
    rng = np.random.default_rng(3)
    n = 45
    y = rng.choice([0, 2], size=n)
    y[[5, 30]] = 1  # reject: 2 rows, 2 plans, both predicted right
    pred = np.where((rng.random(n) < 0.85) | (y == 1), y, np.where(y == 0, 2, 0))
    proba = np.full((n, 3), 0.05)
    proba[np.arange(n), pred] = 0.90
    groups = np.arange(n)
    fast = m.bootstrap_intervals(y, proba, groups, n_boot=4000, seed=0)
    reps = [r[0] for r in _loop_bootstrap(y, [proba], groups, n_boot=1500, seed=1)]
    loop_y = _loop_labels(y, groups, n_boot=1500, seed=1)
    with_reject = [r for r, labels in zip(reps, loop_y) if 1 in labels]
    assert 0.08 < 1 - len(with_reject) / len(reps) < 0.18  # the premise: some replicates lack the class
    for name in ("recall_reject", "precision_reject", "macro_f1", "recall_approve"):
        lo, hi = np.quantile([r[name] for r in with_reject], [0.025, 0.975])
        assert fast[name] == pytest.approx((lo, hi), abs=0.02), name
    assert fast["recall_reject"] == (1.0, 1.0)
    no_reject = y != 1
    none = m.bootstrap_intervals(y[no_reject], proba[no_reject], groups[no_reject], n_boot=200, seed=0)
    assert not {"recall_reject", "precision_reject", "f1_reject", "macro_f1"} & set(none)
    assert set(none) >= {"accuracy", "recall_approve", "precision_review_required"}


def _loop_labels(y, groups, n_boot, seed):
    """The labels of each replicate `_loop_bootstrap` draws with the same seed."""
    rng = np.random.default_rng(seed)
    plans = np.unique(groups)
    rows_of = {p: np.flatnonzero(groups == p) for p in plans}
    return [set(y[np.concatenate([rows_of[p] for p in rng.choice(plans, size=len(plans), replace=True)])])
            for _ in range(n_boot)]


def test_bootstrap_covers_macro_f1_and_per_class_recall_about_95_percent_of_the_time():
    """Superpopulation truth from 400,000 plans; 200 test splits of 200 plans each, 500 replicates."""
    truth_y, truth_p, _ = _clustered(np.random.default_rng(100), 400_000)
    truth = _sklearn_metrics(truth_y, truth_p)
    rng = np.random.default_rng(101)
    names = ["macro_f1", "accuracy"] + [f"recall_{c}" for c in CLASSES]
    covered = dict.fromkeys(names, 0)
    trials = 200
    for t in range(trials):
        y, proba, groups = _clustered(rng, 200)
        ci = m.bootstrap_intervals(y, proba, groups, n_boot=500, seed=t)
        for name in names:
            covered[name] += ci[name][0] <= truth[name] <= ci[name][1]
    rates = {k: v / trials for k, v in covered.items()}
    # binomial sd of a 95% rate over 200 trials is 0.015: allow about 3 sd either side
    assert all(0.90 <= r <= 0.99 for r in rates.values()), rates


def test_expected_calibration_error_and_brier_match_their_definitions():
    rng = np.random.default_rng(3)
    y, proba, _ = _clustered(rng, 400)
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == y
    ece = 0.0
    for b in range(15):  # bins (b/15, (b+1)/15], the first one closed
        lo, hi = b / 15, (b + 1) / 15
        inside = (confidence > lo) & (confidence <= hi) | ((b == 0) & (confidence == 0))
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    got = m.calibration_metrics(y, proba)
    assert got["ece"] == pytest.approx(ece, abs=1e-12)
    assert got["ece_debiased"] == pytest.approx(max(0.0, ece - got["ece_noise_floor"]))
    assert got["brier"] == pytest.approx(np.mean(np.sum((proba - np.eye(3)[y]) ** 2, axis=1)))
    perfect = np.eye(3)[y]
    assert m.calibration_metrics(y, perfect) == {"ece": 0.0, "ece_noise_floor": 0.0, "ece_debiased": 0.0, "brier": 0.0}


def test_the_ece_noise_floor_is_what_a_calibrated_model_shows_and_the_gate_passes_it():
    """Outcomes drawn from the model's own confidences (perfectly calibrated): on 300 rows the raw ECE sits
    near its noise floor (often near the 0.05 bound); the debiased ECE passes. An overconfident model fails."""
    rng = np.random.default_rng(21)
    raw, passed = [], 0
    for _ in range(40):
        proba = rng.dirichlet([4, 1, 1], size=300)[:, rng.permutation(3)]
        y = np.array([rng.choice(3, p=row) for row in proba])
        got = m.calibration_metrics(y, proba)
        raw.append(got["ece"])
        passed += m.calibration_gate(got["ece"], noise_floor=got["ece_noise_floor"]).passed
        floor = got["ece_noise_floor"]
    assert 0.02 < floor < 0.06 and np.mean(raw) == pytest.approx(floor, abs=0.01)
    assert passed == 40
    proba = rng.dirichlet([4, 1, 1], size=300)
    sharp = proba ** 4 / (proba ** 4).sum(axis=1, keepdims=True)  # overconfident, same argmax
    y = np.array([rng.choice(3, p=row) for row in proba])
    got = m.calibration_metrics(y, sharp)
    verdict = m.calibration_gate(got["ece"], noise_floor=got["ece_noise_floor"])
    assert not verdict.passed and verdict.describe().startswith("debiased ECE ") and "> 0.05" in verdict.describe()
    raw, floor = got["ece"], got["ece_noise_floor"]
    assert f"raw ECE {raw:.3f} minus noise floor {floor:.3f}" in verdict.describe()
    passing = m.calibration_gate(0.054, noise_floor=0.020).describe()
    assert passing == "debiased ECE 0.034 <= 0.05 (raw ECE 0.054 minus noise floor 0.020)"


def test_gates_name_the_failed_metric_value_bound_and_interval():
    pm = {name: 0.9 for name in m.minimum_metrics()}
    pm["recall_reject"] = 0.41
    verdict = m.evaluate_gates(pm, intervals={"recall_reject": (0.33, 0.49)})
    assert not verdict.passed
    assert [f["metric"] for f in verdict.failures] == ["recall_reject"]
    assert verdict.failures[0]["shortfall"] == pytest.approx(0.19)
    assert verdict.describe() == "recall_reject = 0.410 < 0.60 (short by 0.190) (95% CI [0.330, 0.490])"
    assert m.evaluate_gates({name: 0.9 for name in m.minimum_metrics()}).passed
    assert m.calibration_gate(0.081).describe() == "ECE 0.081 > 0.05 (over by 0.031)"
    assert m.calibration_gate(0.05).passed


def test_champion_comparison_needs_two_points_and_no_regression():
    base = {name: 0.80 for name in m.minimum_metrics()}
    assert m.champion_comparison({**base, "macro_f1": 0.825}, base)["better"]
    assert not m.champion_comparison({**base, "macro_f1": 0.815}, base)["better"]
    worse = m.champion_comparison({**base, "macro_f1": 0.85, "recall_reject": 0.75}, base)
    assert not worse["better"] and "recall_reject" in worse["regressions"]


def _test_frame(y, groups):
    return pd.DataFrame({"label": [CLASSES[k] for k in y], "plan_id": [f"p{g}" for g in groups]})


def test_a_worse_challenger_fails_non_inferiority_and_promote_if_better_keeps_the_champion():
    rng = np.random.default_rng(9)
    y, champion, groups = _clustered(rng, 400)
    test = _test_frame(y, groups)
    worse = champion.copy()
    right = champion.argmax(axis=1) == y
    spoil = right & (rng.random(len(y)) < 0.2)  # a fifth of the champion's right answers turned wrong
    worse[spoil] = np.roll(champion[spoil], 1, axis=1)
    report = m.build_report(test, worse, {"version": "3"}, champion, n_boot=500)
    ni = report["non_inferiority"]
    assert ni["applicable"] and not ni["passed"]
    failed = {f["metric"]: f for f in ni["failures"]}
    assert {"macro_f1", "accuracy"} <= set(failed)
    assert failed["accuracy"]["value"] == pytest.approx(
        report["metrics"]["accuracy"] - report["champion"]["metrics"]["accuracy"])
    assert failed["accuracy"]["interval"][1] < 0 and "accuracy delta = -" in ni["summary"]
    assert report["champion_comparison"]["better"] is False
    alias, _ = alias_for_new_version("4", "3", ab_testing_enabled=False, promote_if_better=True,
                                     comparison=report["champion_comparison"])
    assert alias is None  # champion stays where it was
    # the same model against itself: non-inferior, and not "better"
    same = m.build_report(test, champion, {"version": "3"}, champion, n_boot=500)
    assert same["non_inferiority"]["passed"] and not same["champion_comparison"]["better"]
    assert same["champion_comparison"]["delta_intervals"]["macro_f1"] == (0.0, 0.0)


def test_a_clearly_better_challenger_is_promoted_by_promote_if_better():
    rng = np.random.default_rng(10)
    y, champion, groups = _clustered(rng, 400)
    better = champion.copy()
    wrong = champion.argmax(axis=1) != y
    fix = wrong & (rng.random(len(y)) < 0.6)
    better[fix] = np.eye(3)[y[fix]] * 0.7 + 0.1
    report = m.build_report(_test_frame(y, groups), better, {"version": "3"}, champion, n_boot=500)
    assert report["non_inferiority"]["passed"] and report["champion_comparison"]["better"]
    alias, reason = alias_for_new_version("4", "3", ab_testing_enabled=False, promote_if_better=True,
                                          comparison=report["champion_comparison"])
    assert alias == "champion" and "promote_if_better" in reason


def test_the_gate_table_lists_every_gated_metric_with_its_verdict():
    rng = np.random.default_rng(12)
    y, proba, groups = _clustered(rng, 300)
    report = m.build_report(_test_frame(y, groups), proba, n_boot=200)
    rows = m.gate_rows(report)
    assert [r["metric"] for r in rows] == [*m.minimum_metrics(), "ece (debiased)"]
    for r in rows[:-1]:
        assert r["verdict"] == ("pass" if report["metrics"][r["metric"]] >= float(r["bound"][3:]) else "FAIL")
    text = m.gate_table_text(report)
    assert "macro_f1" in text and "ece" in text and len(text.splitlines()) == len(rows) + 2
    assert report["gate"]["passed"] == (report["minimum_metrics"]["passed"] and report["calibration"]["passed"])


def test_the_gate_table_s_columns_line_up_with_its_header_with_a_champion_comparison():
    """The champion rows' metric ("precision_review_required - champion") and bound ("CI high >= -0.02")
    ran into the next column; every cell now starts (the value: ends) where its header does."""
    rng = np.random.default_rng(10)
    y, champion, groups = _clustered(rng, 400)
    report = m.build_report(_test_frame(y, groups), np.roll(champion, 1, axis=0), {"version": "3"}, champion,
                            n_boot=100)
    header, rule, *lines = m.gate_table_text(report).splitlines()
    rows = m.gate_rows(report)
    assert len(lines) == len(rows) and any(r["gate"] == "non_inferiority" for r in rows)
    assert set(rule) == {"-"} and len(rule) == max(len(x) for x in (header, *lines))
    starts = {name: header.index(name) for name in ("gate", "metric", "95% CI", "bound", "verdict")}
    value_end = header.index("value") + len("value")
    for line, r in zip(lines, rows):
        for name, key in (("gate", "gate"), ("metric", "metric"), ("bound", "bound"), ("verdict", "verdict")):
            assert line[starts[name]:].startswith(r[key] + ("  " if name != "verdict" else "")), (name, line)
        assert line[:value_end].endswith(f" {r['value']:.3f}"), line
        interval = "-" if r["interval"] is None else f"[{r['interval'][0]:.3f}, {r['interval'][1]:.3f}]"
        assert line[starts["95% CI"]:].startswith(interval + " "), line


def test_bootstrap_progress_reports_blocks_and_leaves_the_intervals_unchanged():
    from hive_assets.evaluation._bootstrap import PROGRESS_BLOCK

    rng = np.random.default_rng(4)
    y, proba, groups = _clustered(rng, 120)
    lines: list[str] = []
    n_boot = 2 * PROGRESS_BLOCK + 7  # a last, partial block
    with_progress = m.bootstrap_intervals(y, proba, groups, n_boot=n_boot, seed=3, progress=lines.append)
    assert with_progress == m.bootstrap_intervals(y, proba, groups, n_boot=n_boot, seed=3)
    n_plans = len(np.unique(groups))
    assert lines == [f"bootstrap: {k} / {n_boot} replicates over {n_plans} plans"
                     for k in (PROGRESS_BLOCK, 2 * PROGRESS_BLOCK, n_boot)]
    paired_lines: list[str] = []
    other = np.roll(proba, 1, axis=0)
    assert m.paired_bootstrap_deltas(y, proba, other, groups, n_boot=n_boot, seed=3, progress=paired_lines.append) \
        == m.paired_bootstrap_deltas(y, proba, other, groups, n_boot=n_boot, seed=3)
    assert len(paired_lines) == 6 and paired_lines[-1].startswith("paired bootstrap (champion)")


def test_a_failed_gate_never_prints_its_value_equal_to_its_bound():
    """3 decimals printed "debiased ECE 0.050 > 0.05 (over by 0.000)" for 0.0502."""
    from hive_assets.evaluation._gates import calibration_gate, evaluate_gates

    assert calibration_gate(0.0702, 0.05, 0.02).describe().startswith("debiased ECE 0.0502 > 0.05 (over by 0.0002;")
    assert calibration_gate(0.09, 0.05).describe() == "ECE 0.090 > 0.05 (over by 0.040)"  # 3 decimals when they do
    assert evaluate_gates({"accuracy": 0.64996}, {"accuracy": 0.65}).describe() == \
        "accuracy = 0.64996 < 0.65 (short by 0.00004)"


@pytest.mark.parametrize("gate", ["accuracy", "raw ece", "noise floor"])
def test_a_metric_that_could_not_be_computed_fails_its_gate(gate):
    """NaN compares False with any bound, so `nan < 0.65` let a NaN accuracy through, and max(0, nan - floor)
    turned a NaN ECE into a debiased 0.000 that passed."""
    import json

    from hive_assets.evaluation._gates import calibration_gate, evaluate_gates

    nan = float("nan")
    verdict = {"accuracy": lambda: evaluate_gates({"accuracy": nan, "macro_f1": 0.9},
                                                  {"accuracy": 0.65, "macro_f1": 0.6}),
               "raw ece": lambda: calibration_gate(nan, 0.05, 0.02),
               "noise floor": lambda: calibration_gate(0.03, 0.05, nan)}[gate]()
    assert not verdict.passed and len(verdict.failures) == 1
    assert "could not be computed" in verdict.describe() and "not shown" in verdict.describe()
    json.dumps(verdict.failures, allow_nan=False)  # no NaN reaches the check's JSON metadata
    assert calibration_gate(0.03, 0.05, 0.0).passed  # a finite value still decides
