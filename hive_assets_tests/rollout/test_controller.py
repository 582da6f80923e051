"""Each rule of the rollout controller (SPEC section 7), on both sides of its threshold."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from hive_assets.rollout._controller import (END_FUTILE, END_MAX_DURATION, EXPAND, FINAL_ACTIONS, HOLD,
                                             INSUFFICIENT_DATA, PROMOTE, ROLLBACK, RolloutPolicy, StepCounts,
                                             TestState, TrafficStep, decide, matured_cutoff, tally)
from hive_assets.rollout._statistics import ArmCounts

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
POLICY = RolloutPolicy()


def arm(labelled: int, agreement: float, served: int | None = None, confidence: float = 0.8) -> ArmCounts:
    served = labelled if served is None else served
    return ArmCounts(served, confidence * served, labelled, labelled, round(labelled * agreement))


def state(*percents_at_hours: tuple[float, float]) -> TestState:
    return TestState(START, tuple(TrafficStep(START + timedelta(hours=h), p) for p, h in percents_at_hours))


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def one_step(percent: float, champion_n: int, challenger_n: int, champion_p: float, challenger_p: float,
             **challenger_kwargs) -> list[StepCounts]:
    # served in the exact ratio of the share, so the SRM test stays quiet
    return [StepCounts(arm(champion_n, champion_p), arm(challenger_n, challenger_p, **challenger_kwargs))]


def test_insufficient_data_is_a_state_never_a_pass():
    s = state((10, 0))
    counts = one_step(10, 441, 49, 0.8, 0.8)
    d = decide(s, counts, at(30))
    assert (d.action, d.traffic_percent, d.rule) == (INSUFFICIENT_DATA, 10, "min_labelled")
    assert not d.final
    d = decide(s, one_step(10, 450, 50, 0.8, 0.8), at(30))
    assert (d.action, d.traffic_percent) == (EXPAND, 25)


def test_ten_to_twenty_five_after_24_hours():
    s = state((10, 0))
    counts = one_step(10, 900, 100, 0.8, 0.8)
    assert decide(s, counts, at(24) - timedelta(seconds=1)).action == HOLD
    d = decide(s, counts, at(24))
    assert (d.action, d.traffic_percent, d.rule) == (EXPAND, 25, "not_worse")


def test_significantly_worse_rolls_back_not_worse_does_not():
    s = state((10, 0))
    worse = decide(s, one_step(10, 2700, 300, 0.80, 0.70), at(30))
    assert (worse.action, worse.traffic_percent, worse.rule) == (ROLLBACK, 0, "significantly_worse")
    assert worse.statistics["difference"]["upper"] < 0
    slightly = decide(s, one_step(10, 2700, 300, 0.80, 0.76), at(30))
    assert slightly.action == EXPAND and slightly.statistics["difference"]["upper"] > 0


def test_twenty_five_to_fifty_needs_48_hours_an_estimate_at_least_the_champions_and_non_inferiority():
    s = state((10, 0), (25, 24))
    steps = [StepCounts(arm(2700, 0.8), arm(300, 0.8)), StepCounts(arm(4500, 0.8), arm(1500, 0.8))]
    assert decide(s, steps, at(47)).action == HOLD
    d = decide(s, steps, at(48))
    assert (d.action, d.traffic_percent, d.rule) == (EXPAND, 50, "estimate_at_least_champion")
    assert d.statistics["provisional_difference"]["lower"] > -POLICY.noninferiority_margin
    provisional = lambda n, p: ArmCounts(n, 0.8 * n, 0, 0, 0, interim_labelled=n, interim_agreements=round(n * p))
    # labels known only provisionally (a 48 h window): futility cannot stop it, the gate holds it
    below = [StepCounts(provisional(2700, 0.8), provisional(300, 0.8)),
             StepCounts(provisional(4500, 0.8), provisional(1500, 0.79))]
    d = decide(s, below, at(48))
    assert (d.action, d.traffic_percent, d.rule) == (HOLD, 25, "estimate_below_champion")
    # changed (issue 24): an estimate >= 0 on 600 labels (the old gate asked 500) is not enough when the
    # always-valid lower bound still allows the challenger to be 3 points worse
    few = [StepCounts(arm(900, 0.8), arm(100, 0.8)), StepCounts(arm(1500, 0.8), arm(500, 0.8))]
    d = decide(s, few, at(48))
    assert (d.action, d.rule) == (HOLD, "not_shown_noninferior")
    assert d.statistics["provisional_difference"]["lower"] < -POLICY.noninferiority_margin


def young_test() -> list[StepCounts]:
    """10 %, 30 h in: the challenger has 15 matured labels and 24 known (9 still provisional)."""
    return [StepCounts(ArmCounts(1350, 1080.0, 1200, 1000, 800, interim_labelled=60, interim_agreements=48),
                       ArmCounts(150, 120.0, 100, 15, 12, interim_labelled=9, interim_agreements=7))]


def test_too_few_labels_names_the_count_it_read_and_the_matured_one():
    """"24 labelled units in the smaller arm" beside `hive ab-test`'s "labelled 15": the gate counts every label
    known now, the table the matured ones; the reason names both."""
    d = decide(state((10, 0)), young_test(), at(30))
    assert (d.action, d.rule) == (INSUFFICIENT_DATA, "min_labelled")
    assert d.reason == "24 labelled units known in the smaller arm (15 matured), need 50 known before any decision"


def test_expansion_gates_read_provisional_labels_verdicts_only_frozen_ones():
    s = state((10, 0))
    # 24 h into a test with a 48 h window: nothing matured yet, 80 / 60 labels known provisionally
    young = [StepCounts(ArmCounts(800, 640.0, 0, 0, 0, interim_labelled=600, interim_agreements=480),
                        ArmCounts(90, 72.0, 0, 0, 0, interim_labelled=60, interim_agreements=48))]
    d = decide(s, young, at(24))
    assert (d.action, d.traffic_percent, d.rule) == (EXPAND, 25, "not_worse")
    assert d.statistics["difference"] is None and d.statistics["provisional_difference"]["estimate"] == 0.0
    # provisional labels never roll back or promote: dreadful provisional agreement only holds at 10 %
    bad = [StepCounts(ArmCounts(8000, 6400.0, 0, 0, 0, interim_labelled=6000, interim_agreements=4800),
                      ArmCounts(900, 720.0, 0, 0, 0, interim_labelled=600, interim_agreements=300))]
    d = decide(s, bad, at(30))
    assert (d.action, d.rule) == (HOLD, "provisionally_worse")


def _promotable(challenger_p: float = 0.86, n: int = 1000, champion_p: float = 0.80) -> list[StepCounts]:
    """n labelled units per arm at 50 %, after 3n / n at 25 %."""
    return [StepCounts(arm(3 * n, champion_p), arm(n, challenger_p)),
            StepCounts(arm(n, champion_p), arm(n, challenger_p))]


def test_promotion_after_72_hours_with_1000_labels_and_a_significant_gain_of_2_points():
    s = state((25, 0), (50, 48))
    d = decide(s, _promotable(), at(72))
    assert (d.action, d.traffic_percent, d.rule) == (PROMOTE, 100, "significant_improvement")
    assert d.final and d.statistics["difference"]["lower"] > 0
    assert decide(s, _promotable(), at(71)).action == HOLD                       # too early
    at_25 = decide(state((25, 0)), [StepCounts(arm(3000, 0.80), arm(1000, 0.86))], at(80))
    assert (at_25.action, at_25.traffic_percent) == (EXPAND, 50)                  # 50 % first


def test_promotion_needs_1000_labels_in_each_arm():
    s = state((25, 0), (50, 48))
    # served in the traffic ratio; labels missing for some challenger units
    counts = [StepCounts(arm(1200, 0.80), arm(333, 0.90, served=400)),
              StepCounts(arm(666, 0.80), arm(666, 0.90))]
    d = decide(s, counts, at(80))
    assert (d.action, d.rule) == (INSUFFICIENT_DATA, "promote_min_labelled")
    counts[0] = StepCounts(arm(1200, 0.80), arm(334, 0.90, served=400))
    assert decide(s, counts, at(80)).action == PROMOTE


def test_promotion_needs_the_lower_bound_above_zero():
    s = state((25, 0), (50, 48))
    # +2.5 points (825 vs 800 of 1,000 in each step): past the 2-point rule with room to spare (0.82 - 0.80 is
    # 0.01999... in floating point and failed that rule first), so only the lower bound can refuse it
    d = decide(s, _promotable(challenger_p=0.825), at(80))
    assert d.statistics["difference"]["estimate"] == pytest.approx(0.025)
    assert d.statistics["difference"]["lower"] < 0
    assert (d.action, d.rule) == (HOLD, "not_significant")
    # the same +2.5 points on 3,000 labels per arm in each step: the lower bound is above 0, promoted
    more = decide(s, _promotable(challenger_p=0.825, n=3000), at(80))
    assert more.statistics["difference"]["estimate"] == pytest.approx(0.025)
    assert more.statistics["difference"]["lower"] > 0
    assert (more.action, more.rule) == (PROMOTE, "significant_improvement")


def test_promotion_needs_an_estimate_of_at_least_2_points():
    s = state((25, 0), (50, 48))
    # 100,000 labels per arm: +1.9 points is significant but under the 2 points asked for
    below = decide(s, _promotable(challenger_p=0.819, n=50_000), at(80))
    assert below.statistics["difference"]["lower"] > 0
    assert (below.action, below.rule) == (HOLD, "not_significant")
    above = decide(s, _promotable(challenger_p=0.821, n=50_000), at(80))
    assert above.action == PROMOTE


def test_sample_ratio_mismatch_rolls_back():
    s = state((10, 0))
    broken = [StepCounts(arm(800, 0.8), arm(200, 0.8))]       # 20 % served while the test says 10 %
    d = decide(s, broken, at(5))
    assert (d.action, d.traffic_percent, d.rule) == (ROLLBACK, 0, "srm")
    assert d.statistics["srm"]["p_value"] < 0.001
    fine = [StepCounts(arm(880, 0.8), arm(120, 0.8))]          # chi-square p ~ 0.035
    assert decide(s, fine, at(5)).action == HOLD


def test_the_policy_constants_are_the_spec_s():
    """SPEC section 7: start at 10 %, 10 -> 25 after 24 h, 25 -> 50 after 48 h, promotion after 72 h with
    >= 1000 labels per arm and >= 2 points; rollback under a 0.70 confidence mean or on a sample-ratio
    mismatch at p < 0.001."""
    assert POLICY.srm_p_value == 0.001
    assert (POLICY.start_traffic, POLICY.second_traffic, POLICY.third_traffic) == (10.0, 25.0, 50.0)
    assert (POLICY.second_after, POLICY.third_after, POLICY.promote_after) == (
        timedelta(hours=24), timedelta(hours=48), timedelta(hours=72))
    assert (POLICY.promote_min_labelled_per_arm, POLICY.promote_min_improvement) == (1000, 0.02)
    assert POLICY.min_confidence_mean == 0.70


def test_low_challenger_confidence_rolls_back():
    s = state((10, 0))
    low = one_step(10, 900, 100, 0.8, 0.8, confidence=0.69)
    d = decide(s, low, at(5))
    assert (d.action, d.rule) == (ROLLBACK, "low_confidence")
    assert decide(s, one_step(10, 900, 100, 0.8, 0.8, confidence=0.70), at(5)).action == HOLD
    # under min_served_for_confidence units the mean is not trusted yet
    few = one_step(10, 891, 99, 0.8, 0.8, confidence=0.5)
    assert decide(s, few, at(5)).rule != "low_confidence"


def _served_with_confidences(values: np.ndarray, champion: int = 900) -> list[StepCounts]:
    """One 10 % step at 5 h: `champion` units at 0.8, the challenger's units with these confidences."""
    n = values.size
    served = np.datetime64(START.replace(tzinfo=None), "us") + np.arange(champion + n) * np.timedelta64(10, "s")
    confidence = np.concatenate([np.full(champion, 0.8), values])
    challenger = np.arange(champion + n) >= champion
    nat = np.full(champion + n, np.datetime64("NaT", "us"))
    return tally(served, challenger, confidence, np.zeros(champion + n, bool), nat, state((10, 0)), at(5),
                 POLICY.label_maturity)


def test_a_nan_confidence_never_disables_a_confidence_rule():
    low = np.full(100, 0.6)
    for spoiler in (np.nan, np.inf, -1.0, 2.0):
        values = low.copy()
        values[17] = spoiler
        d = decide(state((10, 0)), _served_with_confidences(values), at(5))
        # the old rule: nan < 0.70 is False, so one NaN kept a 0.6 challenger running
        assert (d.action, d.rule) == (ROLLBACK, "low_confidence"), spoiler
        assert d.statistics["challenger"]["invalid_confidence"] == 1
        assert d.statistics["challenger"]["mean_confidence"] == pytest.approx(np.mean(np.delete(values, 17)))
    fine = np.full(100, 0.9)
    fine[:3] = np.nan                                   # 3 % invalid: excluded, counted, tolerated
    d = decide(state((10, 0)), _served_with_confidences(fine), at(5))
    assert not d.final and d.statistics["challenger"]["invalid_confidence"] == 3
    broken = np.full(100, 0.9)
    broken[:6] = np.nan                                 # 6 % > 5 %: a model that emits them is broken
    d = decide(state((10, 0)), _served_with_confidences(broken), at(5))
    assert (d.action, d.rule) == (ROLLBACK, "invalid_confidence")
    everything_nan = decide(state((10, 0)), _served_with_confidences(np.full(100, np.nan)), at(5))
    assert (everything_nan.action, everything_nan.rule) == (ROLLBACK, "invalid_confidence")


def test_futility_stops_a_challenger_that_cannot_reach_the_promotion_gain():
    s = state((10, 0), (25, 24))
    # -2.5 points on 1,200 challenger labels: not significantly worse (alpha 0.10), but even the
    # optimistic bound (alpha 0.20) excludes +2 points
    counts = [StepCounts(arm(2000, 0.8), arm(200, 0.8)), StepCounts(arm(3000, 0.8), arm(1000, 0.77))]
    d = decide(s, counts, at(100))
    assert d.statistics["difference"]["upper"] > 0
    assert (d.action, d.rule) == (ROLLBACK, "futility") and d.statistics["futility_upper"] < 0.02
    # the same estimate on fewer labels: the bound still allows +2 points, the test goes on
    fewer = [StepCounts(arm(600, 0.8), arm(60, 0.8)), StepCounts(arm(900, 0.8), arm(300, 0.77))]
    assert decide(s, fewer, at(100)).rule != "futility"
    # a challenger at or above the champion's estimate is never rolled back for futility (on this many
    # labels its interval excludes +2 points: it ends `futile`, champion kept, see below)
    even = [StepCounts(arm(20000, 0.8), arm(2000, 0.8)), StepCounts(arm(30000, 0.8), arm(10000, 0.8))]
    assert (decide(s, even, at(100)).action, decide(s, even, at(100)).rule) == (END_FUTILE, "futile")


def _soak(per_arm_at_50: int, challenger_p: float = 0.805) -> list[StepCounts]:
    """The soak test's shape: 10 -> 25 -> 50 %, then `per_arm_at_50` labels per arm at 50 %; the challenger
    a little better than the champion (0.80), by less than the 2 points a promotion needs."""
    return [StepCounts(arm(900, 0.8), arm(100, challenger_p)), StepCounts(arm(750, 0.8), arm(250, challenger_p)),
            StepCounts(arm(per_arm_at_50, 0.8), arm(per_arm_at_50, challenger_p))]


def _mixture_upper(counts: list[StepCounts], alpha: float, tau: float) -> float:
    """The interval's upper bound computed independently of `_statistics`: the stratified estimate by
    hand, and the normal-mixture boundary found by root-finding on the mixture likelihood ratio
    sqrt(V / (V + tau^2)) exp(tau^2 r^2 / (2 V (V + tau^2))) = 1 / alpha (Robbins; the mSPRT)."""
    from scipy.optimize import brentq

    def pooled(side):
        n = sum(getattr(c, side).labelled for c in counts)
        p = sum(getattr(c, side).agreements for c in counts) / n
        return p * (1 - p)
    var_a, var_b = pooled("champion"), pooled("challenger")
    w = np.array([1 / (var_a / c.champion.labelled + var_b / c.challenger.labelled) for c in counts])
    d = np.array([c.challenger.agreement - c.champion.agreement for c in counts])
    estimate, v = float(w @ d / w.sum()), float(1 / w.sum())
    log_lr = lambda r: 0.5 * np.log(v / (v + tau**2)) + tau**2 * r**2 / (2 * v * (v + tau**2)) - np.log(1 / alpha)
    return estimate + brentq(log_lr, 0.0, 1.0)


def test_futile_ends_a_test_whose_upper_bound_is_below_the_gain_promotion_needs():
    # the soak test: +0.5 points, day 11 at 50 %; the estimate is above the champion's, so the futility
    # rollback (estimate < 0) never fires, and the test ran the full 14 days without this rule
    s = state((10, 0), (25, 24), (50, 48))
    counts = _soak(15000)
    upper = _mixture_upper(counts, POLICY.alpha, POLICY.mixture_sd)
    assert 0.0 < upper < POLICY.promote_min_improvement          # independently: +2 points are excluded
    d = decide(s, counts, at(11 * 24))
    assert (d.action, d.traffic_percent, d.rule) == (END_FUTILE, 0.0, "futile") and d.final
    assert d.action in FINAL_ACTIONS and d.action != ROLLBACK    # champion kept, the challenger not "worse"
    diff = d.statistics["difference"]
    assert diff["upper"] == pytest.approx(upper, rel=1e-9) and diff["estimate"] > 0
    assert d.reason.startswith(f"futile: cannot reach +0.02, the gain a promotion needs: difference "
                               f"{diff['estimate']:+.4f} [{diff['lower']:+.4f}, {upper:+.4f}], its always-valid "
                               "upper bound below +0.02 after 264 h with ")
    assert d.reason.endswith("labels per arm; champion kept")
    # it respects the other verdicts' minimum: below 50 frozen labels an arm has no interval, no verdict
    few = [StepCounts(arm(400, 0.8), arm(49, 0.8))]
    assert not decide(state((10, 0)), few, at(30)).final


def test_futile_does_not_fire_while_the_upper_bound_allows_the_gain():
    s = state((10, 0), (25, 24), (50, 48))
    # the same +0.5 points on fewer labels: the bound still reaches +2 points, the test goes on
    counts = _soak(6000)
    upper = _mixture_upper(counts, POLICY.alpha, POLICY.mixture_sd)
    assert upper > POLICY.promote_min_improvement
    d = decide(s, counts, at(11 * 24))
    assert (d.action, d.rule) == (HOLD, "not_significant") and d.statistics["difference"]["upper"] > 0.02
    # the threshold is the promotion's: asking promotion for only +1 point, the soak's counts can still reach it
    one_point = RolloutPolicy(promote_min_improvement=0.01)
    assert decide(s, _soak(15000), at(11 * 24), one_point).rule != "futile"
    # and a promotable challenger is promoted, never ended as futile
    assert decide(state((25, 0), (50, 48)), _promotable(), at(72)).action == PROMOTE


def test_futile_never_fires_where_a_promotion_is_possible():
    # sweep estimates and volumes at 50 % after 72 h: whenever the rule fires, the promotion's own condition
    # (lower > 0 and estimate >= +2 points) fails at that look, and whenever the upper bound reaches +2
    # points it does not fire
    s = state((25, 0), (50, 48))
    for n in (1000, 3000, 10000, 40000):
        for gain in np.arange(-0.01, 0.05, 0.0025):
            counts = _promotable(challenger_p=0.8 + gain, n=n)
            d = decide(s, counts, at(100))
            diff = d.statistics["difference"]
            promotable = diff["lower"] > 0 and diff["estimate"] >= POLICY.promote_min_improvement
            assert (d.rule == "futile") == (diff["upper"] < 0.02 and diff["estimate"] >= 0), (n, gain, d.reason)
            if d.rule == "futile":
                assert not promotable
            if promotable:
                assert d.action == PROMOTE, (n, gain, d.reason)


def _with_delays(counts: ArmCounts, agree: tuple[int, ...], disagree: tuple[int, ...]) -> ArmCounts:
    scale = lambda bins, total: tuple(int(round(b * total / sum(bins))) for b in bins[:-1])
    a = scale(agree, counts.agreements)
    d = scale(disagree, counts.labelled - counts.agreements)
    return ArmCounts(counts.served, counts.confidence_sum, counts.matured, counts.labelled, counts.agreements,
                     agree_delays=a + (counts.agreements - sum(a),),
                     disagree_delays=d + (counts.labelled - counts.agreements - sum(d),))


def test_unequal_label_delays_block_a_promotion():
    s = state((25, 0), (50, 48))
    fast, slow = (50, 25, 16, 7), (24, 26, 24, 16)     # % of labels per delay bin (medians 6 h / 12 h)
    def promotable(challenger_disagree):
        return [StepCounts(_with_delays(c.champion, fast, fast), _with_delays(c.challenger, fast, challenger_disagree))
                for c in _promotable()]
    assert decide(s, promotable(fast), at(80)).action == PROMOTE
    d = decide(s, promotable(slow), at(80))
    assert (d.action, d.traffic_percent, d.rule) == (HOLD, 50, "unequal_labels")
    assert "label delays differ" in d.reason and d.statistics["label_balance"]["delay_p_value"] < 0.01
    assert decide(s, promotable(slow), at(14 * 24)).action == END_MAX_DURATION   # never promoted


def test_unequal_label_coverage_blocks_a_promotion():
    s = state((25, 0), (50, 48))
    counts = _promotable(n=1250)
    # the challenger's 1,000 + 1,000 labels out of 1,250 + 1,250 matured units: 80 % against the champion's 100 %
    thin = [StepCounts(c.champion, ArmCounts(1250, 1000.0, 1250, 1000, 860)) for c in counts]
    d = decide(state((25, 0), (50, 48)), thin, at(80))
    assert (d.action, d.rule) == (HOLD, "unequal_labels") and "label coverage differs" in d.reason
    assert decide(s, counts, at(80)).action == PROMOTE


def test_maximum_duration_ends_the_test_and_keeps_the_champion():
    s = state((25, 0), (50, 48))
    undecided = _promotable(challenger_p=0.81)
    assert decide(s, undecided, at(14 * 24) - timedelta(hours=1)).action == HOLD
    d = decide(s, undecided, at(14 * 24))
    assert (d.action, d.traffic_percent, d.rule) == (END_MAX_DURATION, 0, "max_duration") and d.final
    starved = decide(state((10, 0)), one_step(10, 30, 3, 0.8, 0.8), at(14 * 24))
    assert (starved.action, starved.rule) == (END_MAX_DURATION, "max_duration")
    assert decide(state((10, 0)), one_step(10, 30, 3, 0.8, 0.8), at(14 * 24 - 1)).action == INSUFFICIENT_DATA


def test_time_comes_only_from_the_clock_argument():
    s = state((10, 0))
    counts = one_step(10, 900, 100, 0.8, 0.8)
    assert decide(s, counts, at(30)) == decide(s, counts, at(30))
    with pytest.raises(ValueError):
        decide(s, counts, at(-1))
    with pytest.raises(ValueError):
        decide(s, counts + counts, at(30))


def test_statistics_are_json_serializable_and_name_the_method():
    d = decide(state((25, 0), (50, 48)), _promotable(), at(72))
    stored = json.loads(json.dumps(d.statistics))
    assert stored["difference"]["method"].startswith("normal-mixture confidence sequence")
    assert stored["challenger"]["labelled"] == 2000 and stored["days_elapsed"] == 3.0
    assert stored["champion"]["label_coverage"] == 1.0


def test_state_from_the_ab_tests_document():
    doc = {"started_at": START, "traffic_history": [
        {"at": START, "percent": 10.0, "reason": "test opened"},
        {"at": at(24), "percent": 25, "reason": "expand"}]}
    s = TestState.from_document(doc)
    assert s.traffic_percent == 25.0 and s.started_at == START and len(s.traffic_history) == 2
    assert s.with_step(at(48), 50).traffic_percent == 50


def test_tally_counts_matured_labels_per_step():
    s = state((10, 0), (25, 24))
    now = at(40)
    maturity = timedelta(hours=12)
    assert matured_cutoff(now, maturity) == at(28)
    h = lambda x: np.datetime64(at(x).replace(tzinfo=None), "us")
    nat = np.datetime64("NaT", "us")
    rows = [  # served_at, challenger, confidence, agrees, labelled_at
        (h(1), False, 0.9, True, h(2)),      # step 0, matured, labelled, agrees
        (h(2), True, 0.7, False, h(3)),      # step 0 challenger, labelled, disagrees
        (h(3), True, 0.8, True, h(20)),      # label after 17 h > 12 h window: not counted
        (h(5), False, 0.6, True, nat),       # never labelled
        (h(25), False, 0.5, True, h(26)),    # step 1, matured (25 <= 28)
        (h(29), True, 0.9, True, h(30)),     # step 1, served after the cutoff: not matured
        (h(41), True, 0.9, True, h(41)),     # after now: ignored
    ]
    served_at, is_challenger, confidence, agrees, labelled_at = map(np.array, zip(*rows))
    counts = tally(served_at, is_challenger, confidence, agrees, labelled_at, s, now, maturity)
    no = (0, 0, 0, 0)
    # delays binned at 12/8, 12/4, 12/2 h: 1 h is in the first bin
    assert counts[0].champion == ArmCounts(2, 1.5, 2, 1, 1, agree_delays=(1, 0, 0, 0), disagree_delays=no)
    assert counts[0].challenger == ArmCounts(2, 1.5, 2, 1, 0, agree_delays=no, disagree_delays=(1, 0, 0, 0))
    assert counts[1].champion == ArmCounts(1, 0.5, 1, 1, 1, agree_delays=(1, 0, 0, 0), disagree_delays=no)
    # served after the cutoff: a provisional label, not a frozen one
    assert counts[1].challenger == ArmCounts(1, 0.9, 0, 0, 0, interim_labelled=1, interim_agreements=1,
                                             agree_delays=no, disagree_delays=no)
    # the same instants given with a time zone give the same counts
    moved = tally(served_at, is_challenger, confidence, agrees, labelled_at, s,
                  now.astimezone(timezone(timedelta(hours=2))), maturity)
    assert moved == counts


def test_a_gain_of_exactly_the_promotion_s_two_points_promotes():
    """16,400 against 16,000 agreements of 20,000 labels is two points exactly; as floats 0.82 - 0.80 is
    0.019999999999999907, which held the test ("not significant") while its reason printed +0.0200. One agreement
    fewer is under the two points."""
    s = TestState(START, (TrafficStep(START, 50.0),))
    for n in (20_000, 50_000):
        exact = one_step(50, n, n, 0.80, 0.82)
        assert exact[0].challenger.agreements - exact[0].champion.agreements == n // 50
        d = decide(s, exact, at(80))
        assert (d.action, d.rule) == (PROMOTE, "significant_improvement"), (n, d.reason)
        short = [StepCounts(exact[0].champion, arm(n, (0.82 * n - 1) / n))]
        assert decide(s, short, at(80)).action != PROMOTE, n
