"""The gates of SPEC section 5 at their boundaries: the constants, a metric exactly at its minimum, a class
at exactly 5 %, the champion comparison's regressions, and which end of a paired interval each
non-inferiority check reads."""

from __future__ import annotations

import pandas as pd
import pytest

from hive_assets import evaluation as m
from hive_assets.config import CLASSES
from hive_assets.registry import alias_for_new_version


def test_the_gate_constants_are_the_spec_s():
    """SPEC section 5: confidence_mean >= 0.70, macro F1 >= 0.65, accuracy >= 0.65, precision and recall
    >= 0.60 for every class; promote_if_better needs +0.02 macro-F1 and no metric worse by more than 0.02."""
    assert m.minimum_metrics() == {
        "confidence_mean": 0.70, "macro_f1": 0.65, "accuracy": 0.65,
        "precision_approve": 0.60, "recall_approve": 0.60,
        "precision_reject": 0.60, "recall_reject": 0.60,
        "precision_review_required": 0.60, "recall_review_required": 0.60,
    }
    assert set(CLASSES) == {"approve", "reject", "review_required"}
    assert (m.PROMOTE_MIN_IMPROVEMENT, m.PROMOTE_MAX_REGRESSION, m.NON_INFERIORITY_MARGIN) == (0.02, 0.02, 0.02)
    assert (m.DEFAULT_MIN_SAMPLES, m.DEFAULT_MIN_TRAINING_SAMPLES, m.MIN_CLASS_SHARE) == (10_000, 300, 0.05)


def _all_at(value: float) -> dict[str, float]:
    return {name: value for name in m.minimum_metrics()}


def test_a_metric_exactly_at_its_minimum_passes_one_count_under_fails():
    """">= 0.65" is met by 0.65: 260 right of 400 is exactly the floor, 259 of 400 is under it."""
    assert 260 / 400 == 0.65 and 240 / 400 == 0.60 and 280 / 400 == 0.70
    at_floor = {"confidence_mean": 280 / 400, "macro_f1": 260 / 400, "accuracy": 260 / 400,
                **{f"{k}_{c}": 240 / 400 for k in ("precision", "recall") for c in CLASSES}}
    verdict = m.evaluate_gates(at_floor)
    assert verdict.passed and verdict.failures == []
    for name in at_floor:
        one_under = {**at_floor, name: at_floor[name] - 1 / 400}
        failed = m.evaluate_gates(one_under)
        assert not failed.passed and [f["metric"] for f in failed.failures] == [name]
        assert failed.failures[0]["shortfall"] == pytest.approx(1 / 400)


def _labels(counts: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"label": [c for c, n in counts.items() for _ in range(n)]})


def test_a_class_at_exactly_five_percent_of_the_labels_is_trainable_one_row_less_is_not():
    """A class "under 5 %" blocks training: 20 of 400 labels (exactly 5 %) does not, 19 of 400 does."""
    exactly = _labels({"approve": 190, "reject": 190, "review_required": 20})
    assert len(exactly) == 400 and m.training_data_problems(exactly, 300) == []
    under = _labels({"approve": 191, "reject": 190, "review_required": 19})
    assert m.training_data_problems(under, 300) == ["class review_required is 4.8% of labels (< 5%)"]


def test_exactly_min_training_samples_labelled_rows_train_one_row_less_does_not():
    """"Fewer than `min_training_samples` labelled rows (default 300) blocks training" (SPEC 5): 300 do not."""
    exactly = _labels({"approve": 100, "reject": 100, "review_required": 100})
    assert m.training_data_problems(exactly) == []
    one_less = _labels({"approve": 100, "reject": 100, "review_required": 99})
    assert m.training_data_problems(one_less) == ["299 labelled rows < min_training_samples 300"]


def test_only_a_confidence_mean_drop_of_more_than_two_points_blocks_promote_if_better():
    base = _all_at(0.80)
    challenger = {**base, "macro_f1": 0.85, "confidence_mean": 0.75}   # +5 points F1, confidence -5 points
    comparison = m.champion_comparison(challenger, base)
    assert comparison["macro_f1_improvement"] == pytest.approx(0.05)
    assert list(comparison["regressions"]) == ["confidence_mean"]
    assert comparison["regressions"]["confidence_mean"] == pytest.approx(0.05)
    assert comparison["better"] is False
    alias, _ = alias_for_new_version("4", "3", ab_testing_enabled=False, promote_if_better=True,
                                     comparison=comparison)
    assert alias is None   # the champion stays
    # a drop of 1 point is within the allowed 2: promoted
    slight = m.champion_comparison({**challenger, "confidence_mean": 0.79}, base)
    assert slight["regressions"] == {} and slight["better"] is True
    alias, _ = alias_for_new_version("4", "3", ab_testing_enabled=False, promote_if_better=True, comparison=slight)
    assert alias == "champion"


def test_metrics_exactly_at_the_bounds_are_judged_at_the_bounds():
    """Counts two points apart are "up >= 0.02" and not "down > 0.02" (SPEC 5); as floats 400/500 - 390/500 is
    0.020000000000000018, and 290 of 350 such pairs counted as a regression. One count further is over."""
    base = _all_at(0.80)
    for n in (500, 1000, 20000):
        for k in range(int(0.65 * n), n, max(1, n // 97)):
            at = {**base, "macro_f1": k / n, "accuracy": (k - 2 * n // 100) / n}
            champion = {**base, "macro_f1": (k - 2 * n // 100) / n, "accuracy": k / n}
            comparison = m.champion_comparison(at, champion)
            assert comparison["regressions"] == {} and comparison["better"] is True, (n, k)
            beyond = m.champion_comparison({**at, "accuracy": (k - 2 * n // 100 - 1) / n}, champion)
            assert list(beyond["regressions"]) == ["accuracy"] and beyond["better"] is False, (n, k)
            short = m.champion_comparison({**at, "macro_f1": (k - 1) / n}, champion)
            assert short["better"] is False, (n, k)


def _deltas(intervals: dict[str, tuple[float, float]]) -> dict[str, float]:
    return {name: (lo + hi) / 2 for name, (lo, hi) in intervals.items()}


def test_a_headline_metric_is_non_inferior_only_when_its_interval_s_lower_end_is_above_minus_the_margin():
    """macro_f1 and accuracy must be SHOWN no worse than the champion by more than 0.02: an interval
    [-0.04, +0.01] straddles -0.02 and fails although its upper end is above 0."""
    for name in ("accuracy", "macro_f1"):
        straddling = {name: (-0.04, 0.01)}
        verdict = m.non_inferiority(_deltas(straddling), straddling, margin=0.02)
        assert not verdict.passed and [f["metric"] for f in verdict.failures] == [name]
        assert verdict.failures[0]["interval"] == [-0.04, 0.01] and verdict.failures[0]["threshold"] == -0.02
        assert verdict.describe() == f"{name} delta = -0.015 vs champion, 95% CI [-0.040, +0.010]: " \
                                     "lower end below -0.02"
        above = {name: (-0.01, 0.03)}
        assert m.non_inferiority(_deltas(above), above, margin=0.02).passed
        at_margin = {name: (-0.02, 0.01)}   # "lower end >= -margin": exactly -0.02 is non-inferior
        assert m.non_inferiority(_deltas(at_margin), at_margin, margin=0.02).passed


def test_a_per_class_metric_fails_non_inferiority_only_when_its_whole_interval_is_below_minus_the_margin():
    """Per-class intervals are wide on a few hundred rows: they fail only when SHOWN worse by more than the
    margin (upper end below -0.02); an interval [-0.04, +0.01] straddling -0.02 does not block."""
    per_class = [f"{k}_{c}" for k in ("precision", "recall") for c in CLASSES] + ["confidence_mean"]
    for name in per_class:
        straddling = {name: (-0.04, 0.01)}
        assert m.non_inferiority(_deltas(straddling), straddling, margin=0.02).passed, name
        below = {name: (-0.05, -0.03)}
        verdict = m.non_inferiority(_deltas(below), below, margin=0.02)
        assert not verdict.passed and [f["metric"] for f in verdict.failures] == [name]
        assert verdict.describe().endswith("upper end below -0.02")
    # both kinds in one comparison: only the headline metric's straddling interval fails
    mixed = {"accuracy": (-0.04, 0.01), "recall_reject": (-0.04, 0.01)}
    verdict = m.non_inferiority(_deltas(mixed), mixed, margin=0.02)
    assert [f["metric"] for f in verdict.failures] == ["accuracy"]


def test_a_class_absent_from_the_test_split_blocks_training_as_a_data_problem():
    """The test split is the latest by time, where a class reviewers stopped using is absent: the data gate
    said nothing, and the report failed the model with "recall_reject = 0.000 (95% CI [0.000, 0.000])"."""
    train = ["approve", "reject", "review_required"] * 70
    validation = ["approve", "reject", "review_required"] * 15
    test = ["approve", "review_required"] * 22 + ["approve"]  # 45 rows, no reject
    frame = pd.DataFrame({"label": train + validation + test,
                          "split": ["train"] * 210 + ["validation"] * 45 + ["test"] * 45})
    assert (frame["label"] == "reject").mean() >= m.MIN_CLASS_SHARE  # the share gate alone lets it through
    assert m.training_data_problems(frame, 100) == [
        "class reject has no rows in the test split (45 rows, split by time): the gate cannot measure its "
        "precision and recall"]
    frame.loc[frame.index[-1], "label"] = "reject"  # one row of it in the test split: a data gate passes
    assert m.training_data_problems(frame, 100) == []


def test_a_metric_that_cannot_be_computed_fails_its_gate_with_its_reason_and_no_interval():
    floors = {"accuracy": 0.65, "recall_reject": 0.60}
    verdict = m.evaluate_gates({"accuracy": 0.9, "recall_reject": None}, floors, intervals={"accuracy": (0.8, 0.95)},
                               not_computable={"recall_reject": "class reject has no rows among the 45 scored"})
    assert not verdict.passed and [f["metric"] for f in verdict.failures] == ["recall_reject"]
    failure = verdict.failures[0]
    assert failure["value"] is None and failure["interval"] is None and failure["shortfall"] is None
    assert verdict.describe() == ("recall_reject could not be computed (class reject has no rows among the 45 "
                                  "scored): >= 0.60 not shown")
    assert "0.000" not in verdict.describe()


def test_a_champion_scored_on_rows_without_a_class_is_neither_better_nor_shown_non_inferior():
    """Both models scored on the same rows: what one cannot compute the other cannot either. A macro-F1 of
    None is no improvement, and no headline metric shown non-inferior; a per-class None is no regression."""
    metrics = {**_all_at(0.9), "macro_f1": None, "precision_reject": None, "recall_reject": None}
    champion = {**_all_at(0.8), "macro_f1": None, "precision_reject": None, "recall_reject": None}
    comparison = m.champion_comparison(metrics, champion)
    assert comparison == {"macro_f1_improvement": None, "regressions": {}, "better": False}
    deltas = {name: None if metrics[name] is None else metrics[name] - champion[name] for name in metrics}
    intervals = {name: (0.05, 0.15) for name, delta in deltas.items() if delta is not None}
    verdict = m.non_inferiority(deltas, intervals)
    assert [f["metric"] for f in verdict.failures] == ["macro_f1"]
    assert verdict.describe() == "macro_f1 delta vs champion could not be computed on these rows: non-inferiority " \
                                 "not shown"
