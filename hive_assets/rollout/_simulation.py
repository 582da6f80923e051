"""Monte-Carlo simulation of whole A/B tests, unit by unit, through the public decision functions.

Used by the tests and by benchmarks/bench_ab.py to measure the error rates the rollout promises. The
generator knows nothing of the controller's counting: it draws served units and their feedback events,
works out for every look which feedback each unit has by then (as the store's join would answer), and
hands one row per unit to `tally` and the counts to `decide`, both as black boxes, at every simulated
hour. Deterministic for a given seed.

Model of one test (hour h: units arrive in [h, h+1), the look is at h + 1):
- served ~ Poisson(units_per_hour) per hour, at uniform instants; each unit goes to the challenger with
  probability share x routing_factor (routing_factor != 1 simulates broken routing);
- the unit agrees with its eventual label with probability p_arm;
- it ever gets a label with probability label_coverage, after a log-normal delay whose median depends
  on the arm and on the outcome (sigma `delay_sigma`): e.g. the challenger's errors reviewed later; a
  share of the challenger's errors instead after a uniform delay in `late_label_hours` (beyond the window);
- with probability correction_share a labelled unit later gets a correction that flips the label, an
  exponential time (mean `correction_delay_hours`) after its first label;
- confidence ~ Normal(mu_arm, sd) clipped to [0, 1]; a share of the challenger's is NaN or missing.
A unit's label at a look at time t is its latest feedback submitted by min(t, served + window): the
rule the platform applies (`arm_observations`), computed here independently from the events. Only the
public `tally` / `decide` / `TestState` / `RolloutPolicy` of `_controller` are used, so the benchmark
can run the same generator against an older controller (`labels_as_of_now`: that version's join).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import numpy as np
from scipy import stats

from hive_assets.rollout import _controller
from hive_assets.rollout._controller import (END_MAX_DURATION, PROMOTE, ROLLBACK, RolloutPolicy,
                                             TestState, TrafficStep, decide, tally)

START = datetime(2026, 1, 5, tzinfo=timezone.utc)
_START64 = np.datetime64(START.replace(tzinfo=None), "us")
_HOUR_US = 3_600_000_000
_NAT = np.datetime64("NaT", "us")


def _at(hours: np.ndarray) -> np.ndarray:
    """Hours since START as datetime64[us]."""
    return _START64 + np.round(hours * _HOUR_US).astype("timedelta64[us]")


@dataclass(frozen=True)
class Scenario:
    champion_agreement: float = 0.80
    challenger_agreement: float = 0.80
    units_per_hour: float = 40.0
    label_coverage: float = 0.8
    # log-normal feedback delay: median hours for (agreeing, disagreeing) units of each arm
    champion_delay_hours: tuple[float, float] = (6.0, 6.0)
    challenger_delay_hours: tuple[float, float] = (6.0, 6.0)
    delay_sigma: float = 1.0
    # a share of the challenger's errors labelled long after the window (uniform in `late_label_hours`),
    # the delays of the others unchanged: escalations reviewed days later
    challenger_late_error_share: float = 0.0
    late_label_hours: tuple[float, float] = (72.0, 120.0)
    correction_share: float = 0.0
    correction_delay_hours: float = 24.0
    routing_factor: float = 1.0
    champion_confidence: float = 0.80
    challenger_confidence: float = 0.80
    confidence_sd: float = 0.10
    challenger_nan_confidence_share: float = 0.0
    # the join before issue 24: each unit's latest label as of the look (a correction after the window
    # replaces the label, and the unit then drops out). For the benchmark's reference rows only.
    labels_as_of_now: bool = False


def late_errors_scenario(**overrides) -> Scenario:
    """The audit's A/A case: the challenger's errors are reviewed later than its successes (log-normal,
    medians 12 h vs 6 h, sigma 1: 8 % vs 2 % beyond 48 h); the champion's labels all have median 6 h."""
    return replace(Scenario(challenger_delay_hours=(6.0, 12.0)), **overrides)


@dataclass(frozen=True)
class Rate:
    successes: int
    trials: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.successes / self.trials

    def __str__(self) -> str:
        return f"{self.value:.1%} ({self.successes}/{self.trials}; 95% CI {self.low:.1%}-{self.high:.1%})"


def rate(flags: np.ndarray) -> Rate:
    """Proportion with its exact (Clopper-Pearson) binomial 95 % interval."""
    k, n = int(np.sum(flags)), int(np.size(flags))
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return Rate(k, n, float(ci.low), float(ci.high))


@dataclass(frozen=True)
class SimulationResult:
    action: np.ndarray              # final action of each test
    rule: np.ndarray                # the rule that decided it
    hours: np.ndarray               # elapsed hours at the decision
    max_traffic: np.ndarray         # highest challenger share in force before the decision
    labelled: np.ndarray            # (tests, 2) matured labelled units per arm at the decision
    counts_shrank: np.ndarray       # a step's served / matured / labelled / agreements fell between looks
    rules_seen: tuple[frozenset, ...]  # every rule that decided a look, per test

    def promoted(self) -> np.ndarray:
        return self.action == PROMOTE

    def rolled_back(self) -> np.ndarray:
        return self.action == ROLLBACK


def _lognormal(rng: np.random.Generator, median: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(np.log(median) + sigma * rng.standard_normal(median.shape))


def simulate_one(scenario: Scenario, rng: np.random.Generator, policy: RolloutPolicy):
    """One whole test; returns (action, rule, hours, max traffic, labelled per arm, shrank, rules)."""
    horizon = int(policy.max_duration / timedelta(hours=1))
    window_h = policy.label_maturity / timedelta(hours=1)
    capacity = int(scenario.units_per_hour * horizon * 1.3) + 100
    served_h = np.empty(capacity)          # hours since START
    challenger = np.empty(capacity, dtype=bool)
    outcome = np.empty(capacity, dtype=bool)
    first_label_h = np.empty(capacity)     # delay of the first label, inf if never
    correction_h = np.empty(capacity)      # delay of the correction, inf if none
    confidence = np.empty(capacity)
    served_at = np.empty(capacity, dtype="datetime64[us]")
    first_at = np.empty(capacity, dtype="datetime64[us]")      # when the first label is submitted
    correction_at = np.empty(capacity, dtype="datetime64[us]")
    n = 0
    state = TestState(START, (TrafficStep(START, policy.start_traffic),))
    previous = None
    shrank = False
    rules: set[str] = set()
    median = np.array([scenario.champion_delay_hours, scenario.challenger_delay_hours])  # [arm, disagrees]
    for hour in range(horizon):
        m = int(rng.poisson(scenario.units_per_hour))
        sl = slice(n, n + m)
        served_h[sl] = hour + rng.random(m)
        arm = rng.random(m) < min(state.traffic_percent / 100.0 * scenario.routing_factor, 1.0)
        challenger[sl] = arm
        p = np.where(arm, scenario.challenger_agreement, scenario.champion_agreement)
        agrees = rng.random(m) < p
        outcome[sl] = agrees
        delay = _lognormal(rng, median[arm.astype(int), (~agrees).astype(int)], scenario.delay_sigma)
        if scenario.challenger_late_error_share:  # (no draw otherwise: the other scenarios keep their streams)
            late = arm & ~agrees & (rng.random(m) < scenario.challenger_late_error_share)
            delay[late] = rng.uniform(*scenario.late_label_hours, int(late.sum()))
        first_label_h[sl] = np.where(rng.random(m) < scenario.label_coverage, delay, np.inf)
        corrected = rng.random(m) < scenario.correction_share
        correction_h[sl] = np.where(corrected, first_label_h[sl] + rng.exponential(scenario.correction_delay_hours, m),
                                    np.inf)
        mu = np.where(arm, scenario.challenger_confidence, scenario.champion_confidence)
        conf = np.clip(rng.normal(mu, scenario.confidence_sd), 0.0, 1.0)
        conf[arm & (rng.random(m) < scenario.challenger_nan_confidence_share)] = np.nan
        confidence[sl] = conf
        served_at[sl] = _at(served_h[sl])
        first_at[sl] = _at(served_h[sl] + np.where(np.isfinite(first_label_h[sl]), first_label_h[sl], 0.0))
        correction_at[sl] = _at(served_h[sl] + np.where(np.isfinite(correction_h[sl]), correction_h[sl], 0.0))
        n += m

        look = hour + 1
        now = START + timedelta(hours=look)
        s = served_h[:n]
        known_for = look - s if scenario.labels_as_of_now else np.minimum(look - s, window_h)
        has_label = first_label_h[:n] <= known_for
        is_corrected = has_label & (correction_h[:n] <= known_for)
        labelled_at = np.where(has_label, np.where(is_corrected, correction_at[:n], first_at[:n]), _NAT)
        counts = tally(served_at[:n], challenger[:n], confidence[:n], outcome[:n] ^ is_corrected, labelled_at,
                       state, now, policy.label_maturity)
        current = np.array([[getattr(getattr(c, a), f) for a in ("champion", "challenger")
                             for f in ("served", "matured", "labelled", "agreements")] for c in counts])
        if previous is not None and np.any(current[: len(previous)] < previous):
            shrank = True
        previous = current
        d = decide(state, counts, now, policy)
        rules.add(d.rule)
        if d.final:
            labelled = [sum(c.champion.labelled for c in counts), sum(c.challenger.labelled for c in counts)]
            return d.action, d.rule, look, max(h.percent for h in state.traffic_history), labelled, shrank, rules
        if d.traffic_percent != state.traffic_percent:
            state = state.with_step(now, d.traffic_percent)
    raise AssertionError("decide() ends every test at max_duration at the latest")


def simulate(scenario: Scenario, n_tests: int, seed: int, policy: RolloutPolicy = RolloutPolicy()) -> SimulationResult:
    """`n_tests` independent tests (test i draws from the stream (seed, i))."""
    out = [simulate_one(scenario, np.random.default_rng([seed, i]), policy) for i in range(n_tests)]
    action, rule, hours, top, labelled, shrank, rules = zip(*out)
    result = SimulationResult(np.array(action, dtype=str), np.array(rule, dtype=str), np.array(hours),
                              np.array(top), np.array(labelled), np.array(shrank), tuple(map(frozenset, rules)))
    # (an older controller, the benchmark's reference, may have fewer final actions)
    assert set(result.action) <= getattr(_controller, "FINAL_ACTIONS", {PROMOTE, ROLLBACK, END_MAX_DURATION})
    return result


def beyond_window(median_hours: float, sigma: float, window_hours: float) -> float:
    """P(log-normal delay > window): the share of labels a window drops."""
    return 0.5 * math.erfc(math.log(window_hours / median_hours) / (sigma * math.sqrt(2.0)))
