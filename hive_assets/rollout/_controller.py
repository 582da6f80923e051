"""The rollout decision rule of SPEC section 7, as a pure function of counts, state and a clock.

`decide` is called once per look (hourly): it never reads the wall clock (time comes from `now`, the
injectable clock), never stores anything (the caller writes the returned `Decision` into the
`ab_tests` document and the ledger) and never routes traffic itself.

Two kinds of labels (see `tally`): FROZEN labels of matured units (served at least `label_maturity`
ago; the label known at served + maturity, never changed by a later correction, so counts only grow)
carry every final verdict; PROVISIONAL labels of younger units (known now, may still be corrected) are
added to them only for the expansion gates.

Order of the rules at one look:

1. sample-ratio mismatch (chi-square over the traffic steps, p < 0.001,
   confirmed by the always-valid sequential SRM test at the same level)        -> rollback
2. challenger confidences (once `min_served_for_confidence` served): more than
   `max_invalid_confidence_share` missing / NaN / outside [0, 1]               -> rollback
   mean of the valid ones < 0.70                                               -> rollback
   (an invalid value is excluded and counted: it can neither hide nor fake a low mean)
3. frozen labels, >= `min_labelled_per_arm` per arm: always-valid interval
   entirely below 0 (significantly worse)                                      -> rollback
   futility: estimate < 0 and the upper bound at `futility_alpha` < 2 points   -> rollback
   futile: the always-valid upper bound (alpha, the promotion's own interval)
   below the gain a promotion needs (`promotion_needs`)                        -> end_futile
4. at 50 %, >= 72 h since the start, >= 1000 frozen labels per arm, significant gain:
   promote (100 %), unless the label-coverage guard finds the arms' label
   coverage or their label delays (per outcome) unequal                        -> hold ("unequal_labels")
5. maximum duration reached without a verdict                                 -> end_max_duration
6. fewer than `min_labelled_per_arm` labels known in an arm (below 50 %)       -> insufficient_data
7. 10 -> 25 after 24 h unless the labels known so far say significantly worse -> expand
   25 -> 50 after 48 h if, on the labels known so far, the estimate is >= 0 AND the always-valid
   lower bound is above -`noninferiority_margin` (3 points)                     -> expand
8. otherwise                                                                  -> hold

"Significant improvement >= 2 points": the always-valid lower bound is > 0 AND the point estimate is
>= 0.02. Under no difference the lower bound crosses 0 with probability <= alpha = 0.10 at any number of
looks (Ville), about half of it by symmetry.

Why each addition is valid and what it buys (BENCHMARKS.md "A/B controller" has the simulated rates):

- Frozen labels: the estimand is agreement with the label as known `label_maturity` after serving, the
  same for every unit of both arms. Freezing it makes each unit's contribution final once it enters,
  as the confidence sequence's martingale argument assumes (data only accumulate).
- Label-coverage guard (`label_balance`): the window drops labels slower than it; if one arm's errors
  are reviewed later than its successes, and more so than the other arm's, it drops more of that arm's
  errors and inflates its agreement. That shows as a difference between the arms' label delays for the
  same outcome (and possibly in coverage), which blocks promotion: the test holds, and ends with the
  champion kept if it stays so. Only promotion is blocked: a rollback or a futility stop keeps the
  champion either way.
- Futility: if the challenger's estimate is below the champion's and even an optimistic upper bound
  (alpha 0.20) is under the 2 points promotion needs, the test cannot end in a promotion worth having;
  stopping it risks only a lost chance (a really >= 2-point-better challenger is stopped with
  probability <= 0.20 by Ville; simulated at exactly +2 points, 40 units/h: 4.2 %, 17 of 400), and it
  is what stops a bad challenger at low traffic, where the significantly-worse bound alone needs more
  labels than 14 days at 25 % bring.
- Futile (`promotion_out_of_reach`): the same test, from the promotion's side. A promotion needs the
  lower bound above 0 AND the estimate >= `promote_min_improvement`: it claims a true gain of at least
  `promotion_needs(policy)` = max(promote_min_improvement, 0). Once the interval's upper bound is
  below that, no promotion can happen at this look (estimate <= upper), and one at a later look would
  need the true gain to be at least that much although the sequence excluded it: the event whose
  probability over the whole test the interval bounds by alpha (one side of it: about alpha / 2). So
  the test ends with the champion kept ("end_futile", no rollback: the challenger is not shown worse,
  only not enough better). With an estimate below 0 the futility rollback, checked first, fires then
  (its bound at `futility_alpha` is narrower), so `futile` ends the challengers at or above the
  champion. Found by a soak test: challengers better by 0-2 points ran the full 14 days at 25-50 %
  traffic, holding every drift retraining meanwhile, after their upper bound had fallen below +2
  points days earlier. It reads frozen labels only, with the other verdicts' minimum
  (`min_labelled_per_arm` per arm).
- Expansion gates on every known label: traffic changes may depend on any past data (the interval is
  stratified by traffic step and each unit's arm is drawn independently of its own outcome, so the
  steps' boundaries do not bias it); using provisional labels there only lets the schedule move after
  24 / 48 h instead of waiting a whole window for the first frozen label: +5 points are promoted days
  earlier at the default 48 h window, with unchanged validity of the verdicts. Within a step both arms'
  units have the same ages, so provisional labels compare alike when delays do not depend on the arm.
- The 25 -> 50 gate's lower bound > -3 points is a non-inferiority test in units of information: at
  low volume it simply waits longer, where a fixed label count let a bad challenger through on a lucky
  estimate (the old gate: 500 labels; P(a challenger worse by > 3 points ever passes) <= alpha/2-ish).

Counts are per traffic step (the statistics compare the arms within a step, so a drift of agreement
over the ramp cannot favour the arm that has more of the later units).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

import numpy as np

from hive_assets.config import TIE_TOLERANCE
from hive_assets.rollout._statistics import (DELAY_BIN_FRACTIONS, DELAY_BINS, ArmCounts, DifferenceResult,
                                              agreement_difference, label_balance, normal_mixture_radius, srm_test,
                                              total)

INSUFFICIENT_DATA = "insufficient_data"
HOLD = "hold"
EXPAND = "expand"
PROMOTE = "promote"
ROLLBACK = "rollback"
END_MAX_DURATION = "end_max_duration"
END_FUTILE = "end_futile"   # the promotion is out of reach: champion kept, no rollback
FINAL_ACTIONS = frozenset({PROMOTE, ROLLBACK, END_MAX_DURATION, END_FUTILE})


@dataclass(frozen=True)
class RolloutPolicy:
    """The constants of SPEC section 7 (percentages are challenger traffic)."""

    start_traffic: float = 10.0          # AB_TEST_DEFAULT_TRAFFIC
    second_traffic: float = 25.0
    third_traffic: float = 50.0
    second_after: timedelta = timedelta(hours=24)
    third_after: timedelta = timedelta(hours=48)
    promote_after: timedelta = timedelta(hours=72)
    promote_min_labelled_per_arm: int = 1000
    promote_min_improvement: float = 0.02
    min_labelled_per_arm: int = 50
    # 25 -> 50 also needs the always-valid lower bound above -margin: a gate in units of information,
    # so it waits longer at low volume instead of letting a bad challenger through on a lucky estimate
    noninferiority_margin: float = 0.03
    min_confidence_mean: float = 0.70
    min_served_for_confidence: int = 100
    # a challenger whose confidences are missing / NaN / out of [0, 1] more often than this is broken
    max_invalid_confidence_share: float = 0.05
    # futility: a challenger below the champion whose upper bound (at this level: stopping a challenger
    # that is really >= 2 points better is a lost chance, not harm) excludes the promotion's 2 points
    futility_alpha: float = 0.20
    # label-coverage guard of the promotion: arms' coverage (gap >= 1 point) or delays per outcome
    # differing at this level block it (a per-look check: a false alarm only delays by an hour)
    balance_p_value: float = 0.01
    balance_min_coverage_gap: float = 0.01
    srm_p_value: float = 0.001
    srm_min_expected: float = 5.0          # chi-square approximation
    srm_prior_concentration: float = 100.0  # always-valid guard, see srm_test
    # two-sided level of the confidence sequence. A false promotion needs the lower bound above 0
    # when the challenger is no better: by the null's symmetry about half of 0.10 (simulated: 3.0 %, 6 of 200 A/A tests)
    alpha: float = 0.10
    mixture_sd: float = 0.03
    max_duration: timedelta = timedelta(days=14)
    # feedback arrives within 48 h in this system (the simulator draws 0.2-48 h): set it to a high
    # quantile of the observed feedback delay
    label_maturity: timedelta = timedelta(hours=48)


@dataclass(frozen=True)
class TrafficStep:
    at: datetime
    percent: float


@dataclass(frozen=True)
class TestState:
    """What the `ab_tests` document says about a running test: when it started, how traffic moved."""

    started_at: datetime
    traffic_history: tuple[TrafficStep, ...]

    __test__ = False  # not a pytest class

    def __post_init__(self) -> None:
        if not self.traffic_history:
            raise ValueError("a test has at least its opening traffic step")
        if any(b.at < a.at for a, b in zip(self.traffic_history, self.traffic_history[1:])):
            raise ValueError("traffic history must be in time order")

    @property
    def traffic_percent(self) -> float:
        return self.traffic_history[-1].percent

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> TestState:
        return cls(doc["started_at"], tuple(TrafficStep(h["at"], float(h["percent"]))
                                            for h in doc["traffic_history"]))

    def with_step(self, at: datetime, percent: float) -> TestState:
        return TestState(self.started_at, self.traffic_history + (TrafficStep(at, percent),))


@dataclass(frozen=True)
class StepCounts:
    """Both arms' counts during one traffic step (aligned with `TestState.traffic_history`)."""

    champion: ArmCounts
    challenger: ArmCounts


@dataclass(frozen=True)
class Decision:
    action: str
    traffic_percent: float
    rule: str          # which rule decided, stable for the ledger ("srm", "significantly_worse", ...)
    reason: str        # for a human
    statistics: dict = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.action in FINAL_ACTIONS


def matured_cutoff(now: datetime, maturity: timedelta) -> datetime:
    """Units served at or before this instant have had the full feedback window.

    A unit counts as labelled once it was served at or before `now - maturity`, with the label known at
    the END of its window (served_at + maturity): the latest trusted feedback submitted by then. That
    label is frozen: a correction submitted later changes nothing, so a unit never leaves the sample
    and the counts of a step only grow from look to look. Every unit, in either arm, gets exactly the
    same time for its feedback, so an arm whose feedback is slower cannot look better just because its
    slow labels (e.g. corrections) have not arrived yet. Labels slower than the window are missed in
    both arms; if the arms' delays differ by outcome the window drops more of one arm's errors: the
    label-coverage guard of `decide` (`label_balance`) blocks a promotion then.
    """
    return now - maturity


# `tally`'s unit classes: 0 .. _FROZEN - 1 a frozen label (agrees x DELAY_BINS + delay bin), then these
_FROZEN = 2 * DELAY_BINS
_MATURED_UNLABELLED, _PROVISIONAL_AGREES, _PROVISIONAL_DISAGREES, _YOUNG_UNLABELLED = range(_FROZEN, _FROZEN + 4)
_CLASSES = _FROZEN + 4


def tally(served_at: np.ndarray, is_challenger: np.ndarray, confidence: np.ndarray,
          agrees: np.ndarray, labelled_at: np.ndarray, state: TestState, now: datetime,
          maturity: timedelta) -> list[StepCounts]:
    """Per-step counts from one row per served unit (opinions joined with their feedback).

    Each row carries the unit's label as known at min(now, served_at + maturity) (the caller's join
    does that: `arm_observations`): labelled_at is when that feedback was submitted (NaT when none),
    agrees whether the recommendation agrees with it (ignored without a label). A filter on which
    units count (e.g. only randomly requested labels) is applied to the rows before this call.
    confidence: float, NaN when missing; values that are not finite or outside [0, 1] are excluded from
    the mean and counted as `invalid_confidence`.

    A unit belongs to the traffic step in force when it was served; units served after `now` are
    ignored. Matured units (served at or before `matured_cutoff`) with a label submitted within the
    window count as labelled, their delays binned by outcome (`DELAY_BIN_FRACTIONS`); younger units
    with a label known now count as interim.
    """
    served_at = np.asarray(served_at, dtype="datetime64[us]")
    labelled_at = np.asarray(labelled_at, dtype="datetime64[us]")
    is_challenger = np.asarray(is_challenger, dtype=bool)
    confidence = np.asarray(confidence, dtype=float)
    agrees = np.asarray(agrees, dtype=bool)
    if not (served_at.shape == labelled_at.shape == is_challenger.shape == confidence.shape == agrees.shape):
        raise ValueError("one value per served unit in every column")
    now64 = np.datetime64(_naive_utc(now), "us")
    window = np.timedelta64(int(maturity.total_seconds() * 1e6), "us")
    starts = np.array([_naive_utc(s.at) for s in state.traffic_history], dtype="datetime64[us]")
    steps = len(starts)
    # one pass over the units seen by now; each gets its (step, arm) cell and one of 2 x _CLASSES codes:
    # valid confidence (x _CLASSES) + class: frozen label (agrees x DELAY_BINS + delay bin), matured
    # without one, provisional label agreeing / not, young without a label
    seen = np.flatnonzero((served_at <= now64) & (served_at >= starts[0]))
    served_at, labelled_at, agrees = served_at[seen], labelled_at[seen], agrees[seen]
    confidence = confidence[seen]
    step = sum((served_at >= start).astype(np.int64) for start in starts[1:]) if steps > 1 else 0
    cell = step * 2 + is_challenger[seen]
    matured = served_at <= now64 - window
    window_us = window.astype(np.int64)
    delay = (labelled_at - served_at).astype(np.int64)   # NaT -> min int64, outside the window
    in_window = ~np.isnat(labelled_at) & (delay >= 0) & (delay <= window_us) & (labelled_at <= now64)
    delay_bin = sum((delay >= int(f * window_us)).astype(np.int64) for f in DELAY_BIN_FRACTIONS)
    provisional = np.where(agrees, _PROVISIONAL_AGREES, _PROVISIONAL_DISAGREES)
    klass = np.where(matured, np.where(in_window, agrees * DELAY_BINS + delay_bin, _MATURED_UNLABELLED),
                     np.where(in_window, provisional, _YOUNG_UNLABELLED))
    with np.errstate(invalid="ignore"):
        valid_confidence = np.isfinite(confidence) & (confidence >= 0.0) & (confidence <= 1.0)
    table = np.bincount((cell * 2 + valid_confidence) * _CLASSES + klass,
                        minlength=2 * steps * 2 * _CLASSES).reshape(2 * steps, 2, _CLASSES)
    confidence_sum = np.bincount(cell, np.where(valid_confidence, confidence, 0.0), minlength=2 * steps)
    by_class = table.sum(axis=1)           # (cell, class)
    out = []
    for k in range(steps):
        arms = []
        for i in (2 * k, 2 * k + 1):
            c = by_class[i]
            disagree_bins, agree_bins = c[:DELAY_BINS], c[DELAY_BINS:_FROZEN]
            arms.append(ArmCounts(int(c.sum()), float(confidence_sum[i]), int(c[:_MATURED_UNLABELLED + 1].sum()),
                                  int(c[:_FROZEN].sum()), int(agree_bins.sum()), int(table[i, 0].sum()),
                                  int(c[_PROVISIONAL_AGREES] + c[_PROVISIONAL_DISAGREES]), int(c[_PROVISIONAL_AGREES]),
                                  tuple(int(x) for x in agree_bins), tuple(int(x) for x in disagree_bins)))
        out.append(StepCounts(*arms))
    return out


def promotion_needs(policy: RolloutPolicy) -> float:
    """The smallest true gain a promotion claims: its lower bound > 0 claims more than 0, its estimate
    >= `promote_min_improvement` asks for that much (the larger of the two)."""
    return max(policy.promote_min_improvement, 0.0)


def promotion_out_of_reach(diff: DifferenceResult, policy: RolloutPolicy) -> bool:
    """The always-valid interval (the promotion's own, at `policy.alpha`) excludes every gain a promotion
    needs: no look can promote now (estimate <= upper), and a later one only after the sequence had
    missed the true difference, which it does with probability <= alpha over the whole test."""
    return diff.upper < promotion_needs(policy)


def _span(span: timedelta) -> str:
    """A duration for a reason a person reads: `24 h`, `14 days` (not timedelta's `1 day, 0:00:00`)."""
    hours = span.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours >= 48 and hours % 24 == 0 else f"{hours:g} h"


def _naive_utc(t: datetime) -> datetime:
    # numpy's datetime64 has no time zone: compare everything as naive UTC
    return t if t.tzinfo is None else t.astimezone(timezone.utc).replace(tzinfo=None)


def decide(state: TestState, counts: Sequence[StepCounts], now: datetime,
           policy: RolloutPolicy = RolloutPolicy()) -> Decision:
    """One look at a running test; see the module docstring for the rules and their order."""
    if len(counts) != len(state.traffic_history):
        raise ValueError("one StepCounts per traffic step")
    if now < state.started_at:
        raise ValueError("now is before the test started")
    traffic = state.traffic_percent
    elapsed = now - state.started_at
    champions, challengers = [c.champion for c in counts], [c.challenger for c in counts]
    champion, challenger = total(champions), total(challengers)
    statistics: dict[str, Any] = {
        "at": now.isoformat(), "elapsed_hours": elapsed.total_seconds() / 3600.0,
        "days_elapsed": elapsed.total_seconds() / 86400.0, "traffic_percent": traffic,
        "champion": champion.as_dict(), "challenger": challenger.as_dict(),
    }

    def decision(action: str, new_traffic: float, rule: str, reason: str) -> Decision:
        return Decision(action, new_traffic, rule, reason, statistics)

    srm = srm_test([a.served for a in champions], [b.served for b in challengers],
                   [s.percent for s in state.traffic_history], policy.srm_min_expected,
                   policy.srm_prior_concentration)
    statistics["srm"] = srm.as_dict() if srm else None
    if srm is not None and srm.mismatch(policy.srm_p_value):
        return decision(ROLLBACK, 0.0, "srm", f"sample-ratio mismatch: chi-square p = {srm.p_value:.2g}, "
                        f"always-valid p = {srm.sequential_p_value:.2g} (< {policy.srm_p_value}) over "
                        f"{srm.steps_tested} traffic step(s)")

    if challenger.served >= policy.min_served_for_confidence:
        invalid = challenger.invalid_confidence_share
        if invalid > policy.max_invalid_confidence_share:
            return decision(ROLLBACK, 0.0, "invalid_confidence", f"{challenger.invalid_confidence} of "
                            f"{challenger.served} challenger confidences missing, NaN or outside [0, 1] "
                            f"({invalid:.1%} > {policy.max_invalid_confidence_share:.0%})")
        confidence = challenger.mean_confidence
        if confidence < policy.min_confidence_mean:
            return decision(ROLLBACK, 0.0, "low_confidence", f"challenger mean confidence {confidence:.3f} "
                            f"< {policy.min_confidence_mean} ({challenger.valid_confidences} valid)")

    out_of_time = elapsed >= policy.max_duration
    fewest = min(champion.labelled, challenger.labelled)
    diff = None
    if fewest >= policy.min_labelled_per_arm:
        diff = agreement_difference(champions, challengers, policy.alpha, policy.mixture_sd)
    statistics["difference"] = diff.as_dict() if diff else None
    interval = diff.interval_text() if diff else "no interval yet"
    if diff is not None and diff.significantly_worse:
        return decision(ROLLBACK, 0.0, "significantly_worse",
                        f"challenger significantly worse: difference {interval}")
    if diff is not None and diff.estimate < 0.0:
        futile_upper = diff.estimate + normal_mixture_radius(diff.variance, policy.futility_alpha, policy.mixture_sd)
        statistics["futility_upper"] = futile_upper
        if futile_upper < policy.promote_min_improvement:
            return decision(ROLLBACK, 0.0, "futility", f"challenger below the champion ({interval}) and its "
                            f"upper bound at alpha {policy.futility_alpha:g}, {futile_upper:+.4f}, rules out the "
                            f"{policy.promote_min_improvement:.0%} gain promotion needs")
    if diff is not None and promotion_out_of_reach(diff, policy):
        needs = promotion_needs(policy)
        return decision(END_FUTILE, 0.0, "futile", f"futile: cannot reach {needs:+.2f}, the gain a promotion "
                        f"needs: difference {interval}, its always-valid upper bound below {needs:+.2f} after "
                        f"{elapsed.total_seconds() / 3600:.0f} h with {fewest}+ matured labels per arm; champion kept")

    balance = label_balance(champions, challengers)
    statistics["label_balance"] = balance.as_dict()
    if traffic >= policy.third_traffic and elapsed >= policy.promote_after and diff is not None:
        # at the bound exactly (16,400 against 16,000 of 20,000 is an estimate of 0.019999999999999907)
        if (fewest >= policy.promote_min_labelled_per_arm and diff.significantly_better
                and diff.estimate >= policy.promote_min_improvement - TIE_TOLERANCE):
            problem = balance.problem(policy.balance_p_value, policy.balance_min_coverage_gap)
            if problem is None:
                return decision(PROMOTE, 100.0, "significant_improvement",
                                f"challenger better by {interval} after "
                                f"{elapsed.total_seconds() / 3600:.0f} h with {fewest}+ matured labels per arm")
            if not out_of_time:
                return decision(HOLD, traffic, "unequal_labels", f"not promoted although better by {interval}: "
                                f"{problem}; the arms' labels are not comparable, held at {traffic:g} %")
    if out_of_time:
        return decision(END_MAX_DURATION, 0.0, "max_duration", f"maximum duration {_span(policy.max_duration)} "
                        f"reached without a verdict ({interval}); champion kept")

    # the expansion gates read every label known now (frozen and provisional): traffic only grows, and
    # waiting for matured labels alone would hold 10 % for the whole window
    smaller = min((champion, challenger), key=lambda arm: arm.known().labelled)
    fewest_known = smaller.known().labelled
    if traffic < policy.third_traffic and fewest_known < policy.min_labelled_per_arm:
        # both counts named, as `hive ab-test` shows each arm's ("labelled 15 matured, 24 known")
        return decision(INSUFFICIENT_DATA, traffic, "min_labelled", f"{fewest_known} labelled units known in the "
                        f"smaller arm ({smaller.labelled} matured), need {policy.min_labelled_per_arm} known "
                        "before any decision")
    provisional = agreement_difference([a.known() for a in champions], [b.known() for b in challengers],
                                       policy.alpha, policy.mixture_sd)
    statistics["provisional_difference"] = provisional.as_dict() if provisional else None
    if provisional is None and traffic < policy.third_traffic:  # labels in both arms, but in no common step
        return decision(INSUFFICIENT_DATA, traffic, "min_labelled", "no traffic step has labels in both arms yet")
    if provisional is not None:
        gate = f"{provisional.interval_text()} on {fewest_known}+ labels known per arm"
    if traffic < policy.second_traffic:
        if elapsed < policy.second_after:
            return decision(HOLD, traffic, "schedule", f"waiting for {_span(policy.second_after)} at {traffic:g} %")
        if provisional.significantly_worse:
            return decision(HOLD, traffic, "provisionally_worse", f"labels known so far say worse: {gate}")
        return decision(EXPAND, policy.second_traffic, "not_worse", f"not significantly worse after "
                        f"{_span(policy.second_after)}: {gate}")
    if traffic < policy.third_traffic:
        if elapsed < policy.third_after:
            return decision(HOLD, traffic, "schedule", f"waiting for {_span(policy.third_after)} at {traffic:g} %")
        if provisional.estimate >= 0.0 and provisional.lower > -policy.noninferiority_margin:
            return decision(EXPAND, policy.third_traffic, "estimate_at_least_champion",
                            f"estimate at least the champion's and worse by less than "
                            f"{policy.noninferiority_margin:.0%} at most: {gate}")
        if provisional.estimate < 0.0:
            return decision(HOLD, traffic, "estimate_below_champion", f"estimate below the champion's: {gate}")
        return decision(HOLD, traffic, "not_shown_noninferior", f"not yet shown worse by less than "
                        f"{policy.noninferiority_margin:.0%}: {gate}")
    if elapsed < policy.promote_after:
        return decision(HOLD, traffic, "schedule", f"waiting for {_span(policy.promote_after)} at {traffic:g} %")
    if fewest < policy.promote_min_labelled_per_arm:
        return decision(INSUFFICIENT_DATA, traffic, "promote_min_labelled", f"{fewest} matured labelled units in "
                        f"the smaller arm, need {policy.promote_min_labelled_per_arm} to promote")
    return decision(HOLD, traffic, "not_significant", f"no significant improvement of >= "
                    f"{policy.promote_min_improvement:.0%} yet: {interval}")
