"""The rollout decision rule of SPEC section 7, as a pure function of counts, state and a clock.

`decide` is called once per look (hourly): it never reads the wall clock (time comes from `now`, the
injectable clock), never stores anything (the caller writes the returned `Decision` into the
`ab_tests` document and the ledger) and never routes traffic itself.

Order of the rules at one look:

1. sample-ratio mismatch (chi-square over the traffic steps, p < 0.001,
   confirmed by the always-valid sequential SRM test at the same level)        -> rollback
2. challenger's mean confidence < 0.70 (once `min_served_for_confidence`)    -> rollback
3. fewer than `min_labelled_per_arm` labelled units in an arm                 -> insufficient_data
   (or end_max_duration once the maximum duration is reached): never a pass
4. always-valid interval entirely below 0 (significantly worse)              -> rollback
5. at 50 %, >= 72 h, >= 1000 labelled per arm, significant improvement      -> promote (100 %)
6. maximum duration reached without a verdict                                 -> end_max_duration
7. 10 -> 25 after 24 h (not significantly worse: rule 4 passed)              -> expand
   25 -> 50 after 48 h if the estimate is >= 0, with >= `min_labelled_for_half`
   labelled units per arm (below that: insufficient_data)                     -> expand
8. otherwise                                                                  -> hold

"Significant improvement >= 2 points" means: the always-valid lower bound is > 0 (the challenger is
better, with the error guarantee of `agreement_difference`) AND the point estimate is >= 0.02. Asking
the lower bound itself to clear 0.02 would need a true gain well above 5 points to pass often; with
this rule a +5 point challenger is promoted in >= 80 % of tests with <= 3,000 labels per arm, while a
false promotion still needs the lower bound to cross 0, which under no difference happens with
probability <= alpha = 0.10 at any number of looks (Ville), about half of it by the null's symmetry.
BENCHMARKS.md has the simulated rates (A/A: 2 % promoted; +5 points: 90 %; -5 points: 98 % rolled
back before 50 %).

Label delay: counts come from `tally`, which applies the `matured_cutoff` rule (same feedback
window for every unit of both arms) and splits them by traffic step (the statistics compare the arms
within a step, so a drift of agreement over the ramp cannot favour the arm that has more of the
later units).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

import numpy as np

from hive_assets.rollout._statistics import (ArmCounts, agreement_difference, srm_test, total)

INSUFFICIENT_DATA = "insufficient_data"
HOLD = "hold"
EXPAND = "expand"
PROMOTE = "promote"
ROLLBACK = "rollback"
END_MAX_DURATION = "end_max_duration"
FINAL_ACTIONS = frozenset({PROMOTE, ROLLBACK, END_MAX_DURATION})


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
    # the 25 -> 50 gate compares point estimates; with fewer labels a clearly worse challenger
    # would pass it by chance too often (bad challengers must be stopped before 50 %)
    min_labelled_for_half: int = 500
    min_confidence_mean: float = 0.70
    min_served_for_confidence: int = 100
    srm_p_value: float = 0.001
    srm_min_expected: float = 5.0          # chi-square approximation
    srm_prior_concentration: float = 100.0  # always-valid guard, see srm_test
    # two-sided level of the confidence sequence. A false promotion needs the lower bound above 0
    # when the challenger is no better: by the null's symmetry about half of 0.10 (simulated: <= 5 %)
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

    Rule the caller applies so label delay cannot bias the comparison: a unit counts as labelled
    only if it was served at or before `now - maturity` AND its label arrived within `maturity` of
    serving. Every unit, in either arm, thus gets exactly the same time for its feedback, so an arm
    whose feedback is slower cannot look better (or worse) just because its slow labels, e.g.
    corrections, have not arrived yet. Labels slower than the window are dropped in both arms
    alike; only if the arms' delays differ AND depend on the outcome beyond the window does a bias
    remain, so set the window at a high quantile of the feedback delay. Label coverage is reported
    per arm to show when the window is too short for one arm's feedback.
    """
    return now - maturity


def tally(served_at: np.ndarray, is_challenger: np.ndarray, confidence: np.ndarray,
          agrees: np.ndarray, labelled_at: np.ndarray, state: TestState, now: datetime,
          maturity: timedelta) -> list[StepCounts]:
    """Per-step counts from one row per served unit (opinions joined with their feedback).

    served_at / labelled_at: datetime64 arrays (NaT when no label); agrees: bool (ignored without a
    label). A unit belongs to the traffic step in force when it was served; units served after
    `now` are ignored. Labels follow the `matured_cutoff` rule.
    """
    served_at = np.asarray(served_at, dtype="datetime64[us]")
    labelled_at = np.asarray(labelled_at, dtype="datetime64[us]")
    is_challenger = np.asarray(is_challenger, dtype=bool)
    confidence = np.asarray(confidence, dtype=float)
    agrees = np.asarray(agrees, dtype=bool)
    now64 = np.datetime64(_naive_utc(now), "us")
    window = np.timedelta64(int(maturity.total_seconds() * 1e6), "us")
    starts = np.array([_naive_utc(s.at) for s in state.traffic_history], dtype="datetime64[us]")
    step = np.searchsorted(starts, served_at, side="right") - 1
    seen = (served_at <= now64) & (step >= 0)
    matured = seen & (served_at <= now64 - window)
    has_label = ~np.isnat(labelled_at)
    labelled = matured & has_label
    labelled[has_label] &= (labelled_at[has_label] - served_at[has_label]) <= window
    agreed = labelled & agrees
    out = []
    for k in range(len(state.traffic_history)):
        arms = []
        for arm in (~is_challenger, is_challenger):
            m = arm & (step == k)
            arms.append(ArmCounts(int((m & seen).sum()), float(confidence[m & seen].sum()),
                                  int((m & matured).sum()), int((m & labelled).sum()),
                                  int((m & agreed).sum())))
        out.append(StepCounts(*arms))
    return out


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
    champion = total([c.champion for c in counts])
    challenger = total([c.challenger for c in counts])
    statistics: dict[str, Any] = {
        "at": now.isoformat(), "elapsed_hours": elapsed.total_seconds() / 3600.0,
        "days_elapsed": elapsed.total_seconds() / 86400.0, "traffic_percent": traffic,
        "champion": champion.as_dict(), "challenger": challenger.as_dict(),
    }

    def decision(action: str, new_traffic: float, rule: str, reason: str) -> Decision:
        return Decision(action, new_traffic, rule, reason, statistics)

    srm = srm_test([c.champion.served for c in counts], [c.challenger.served for c in counts],
                   [s.percent for s in state.traffic_history], policy.srm_min_expected,
                   policy.srm_prior_concentration)
    statistics["srm"] = srm.as_dict() if srm else None
    if srm is not None and srm.mismatch(policy.srm_p_value):
        return decision(ROLLBACK, 0.0, "srm", f"sample-ratio mismatch: chi-square p = {srm.p_value:.2g}, "
                        f"always-valid p = {srm.sequential_p_value:.2g} (< {policy.srm_p_value}) over "
                        f"{srm.steps_tested} traffic step(s)")

    confidence = challenger.mean_confidence
    if challenger.served >= policy.min_served_for_confidence and confidence < policy.min_confidence_mean:
        return decision(ROLLBACK, 0.0, "low_confidence", f"challenger mean confidence {confidence:.3f} "
                        f"< {policy.min_confidence_mean}")

    out_of_time = elapsed >= policy.max_duration
    fewest = min(champion.labelled, challenger.labelled)
    if fewest < policy.min_labelled_per_arm:
        if out_of_time:
            return decision(END_MAX_DURATION, 0.0, "max_duration", f"maximum duration {_span(policy.max_duration)} "
                            f"reached with insufficient data; champion kept")
        return decision(INSUFFICIENT_DATA, traffic, "min_labelled", f"{fewest} labelled units in the "
                        f"smaller arm, need {policy.min_labelled_per_arm} before any decision")

    diff = agreement_difference([c.champion for c in counts], [c.challenger for c in counts],
                                policy.alpha, policy.mixture_sd)
    statistics["difference"] = diff.as_dict()
    interval = f"{diff.estimate:+.4f} [{diff.lower:+.4f}, {diff.upper:+.4f}]"
    if diff.significantly_worse:
        return decision(ROLLBACK, 0.0, "significantly_worse",
                        f"challenger significantly worse: difference {interval}")

    if traffic >= policy.third_traffic and elapsed >= policy.promote_after:
        enough = fewest >= policy.promote_min_labelled_per_arm
        if enough and diff.significantly_better and diff.estimate >= policy.promote_min_improvement:
            return decision(PROMOTE, 100.0, "significant_improvement",
                            f"challenger better by {interval} after "
                            f"{elapsed.total_seconds() / 3600:.0f} h with {fewest}+ labels per arm")
    if out_of_time:
        return decision(END_MAX_DURATION, 0.0, "max_duration", f"maximum duration {_span(policy.max_duration)} "
                        f"reached without a verdict ({interval}); champion kept")

    if traffic < policy.second_traffic:
        if elapsed >= policy.second_after:
            return decision(EXPAND, policy.second_traffic, "not_worse", f"not significantly worse after "
                            f"{_span(policy.second_after)}: {interval}")
        return decision(HOLD, traffic, "schedule", f"waiting for {_span(policy.second_after)} at {traffic:g} %")
    if traffic < policy.third_traffic:
        if elapsed < policy.third_after:
            return decision(HOLD, traffic, "schedule", f"waiting for {_span(policy.third_after)} at {traffic:g} %")
        if fewest < policy.min_labelled_for_half:
            return decision(INSUFFICIENT_DATA, traffic, "min_labelled_for_half",
                            f"{fewest} labelled units in the smaller arm, need "
                            f"{policy.min_labelled_for_half} to go to {policy.third_traffic:g} %")
        if diff.estimate >= 0.0:
            return decision(EXPAND, policy.third_traffic, "estimate_at_least_champion",
                            f"estimate at least the champion's: {interval}")
        return decision(HOLD, traffic, "estimate_below_champion",
                        f"estimate below the champion's: {interval}")
    if elapsed < policy.promote_after:
        return decision(HOLD, traffic, "schedule", f"waiting for {_span(policy.promote_after)} at {traffic:g} %")
    if fewest < policy.promote_min_labelled_per_arm:
        return decision(INSUFFICIENT_DATA, traffic, "promote_min_labelled", f"{fewest} labelled units in "
                        f"the smaller arm, need {policy.promote_min_labelled_per_arm} to promote")
    return decision(HOLD, traffic, "not_significant", f"no significant improvement of >= "
                    f"{policy.promote_min_improvement:.0%} yet: {interval}")
