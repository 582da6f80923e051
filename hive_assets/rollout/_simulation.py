"""Monte-Carlo simulation of whole A/B tests under the real controller (`_controller.decide`).

Used by the tests and by benchmarks/bench_ab.py to measure the error rates the rollout promises.
Many tests run side by side: the data of each hour is drawn for all of them at once with numpy (counts
per hour, never one row per unit), then `decide` is called for every test still running, as the
platform would at its hourly look. Deterministic for a given seed.

Model of one hour h (served units arrive in [h, h+1); the look is at h + 1):
- served ~ Poisson(units_per_hour); challenger ~ Binomial(served, share * routing_factor) where
  share is the test's current traffic (routing_factor != 1 simulates broken routing);
- agreement with the (eventual) label ~ Binomial(arm, p_arm), optionally drifting over time;
- a label ever arrives with probability label_coverage; its delay is exponential with a mean that
  depends on the arm and on whether the unit agrees (e.g. corrections reviewed later);
- confidence sum ~ Normal(n mu, n sd^2) per arm.
Labels are counted either with the controller's maturity rule (units served before now - maturity,
labels that arrived within maturity of serving) or, for contrast, naively (every label that has
arrived by the look).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import numpy as np
from scipy import stats

from hive_assets.rollout._controller import (END_MAX_DURATION, PROMOTE, ROLLBACK, RolloutPolicy,
                                             StepCounts, TestState, TrafficStep, decide)
from hive_assets.rollout._statistics import ArmCounts

START = datetime(2026, 1, 5, tzinfo=timezone.utc)
CHAMPION, CHALLENGER = 0, 1


@dataclass(frozen=True)
class Scenario:
    champion_agreement: float = 0.80
    challenger_agreement: float = 0.80
    units_per_hour: float = 40.0
    label_coverage: float = 0.8
    # mean feedback delay in hours, exponential, for (agreeing, disagreeing) units of each arm
    champion_delay_hours: tuple[float, float] = (1.0, 1.0)
    challenger_delay_hours: tuple[float, float] = (1.0, 1.0)
    # agreement changes by this much per day in both arms (the same drift: still an A/A test)
    agreement_drift_per_day: float = 0.0
    routing_factor: float = 1.0
    champion_confidence: float = 0.80
    challenger_confidence: float = 0.80
    confidence_sd: float = 0.10
    # False: the controller's maturity rule; True: count every label that has arrived (contrast only)
    count_unmatured_labels: bool = False


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
    labelled: np.ndarray            # (tests, 2) labelled units per arm at the decision

    def promoted(self) -> np.ndarray:
        return self.action == PROMOTE

    def rolled_back(self) -> np.ndarray:
        return self.action == ROLLBACK


def _delay_lags(mean_hours: float, maturity_hours: int | None, max_lag: int) -> np.ndarray:
    """P(label is counted `lag` looks after the unit's hour closes), lag = 0..max_lag, + never."""
    out = np.zeros(max_lag + 2)
    if maturity_hours is not None:
        # counted once matured, if it arrived within the window
        out[maturity_hours] = 1.0 - math.exp(-maturity_hours / mean_hours)
    else:
        edges = 1.0 - np.exp(-np.arange(max_lag + 1) / mean_hours)
        out[: max_lag + 1] = np.diff(edges, prepend=0.0)
    out[-1] = 1.0 - out[:-1].sum()
    return out


def simulate(scenario: Scenario, n_tests: int, seed: int,
             policy: RolloutPolicy = RolloutPolicy()) -> SimulationResult:
    rng = np.random.default_rng(seed)
    horizon = int(policy.max_duration / timedelta(hours=1))
    maturity = None if scenario.count_unmatured_labels else int(policy.label_maturity / timedelta(hours=1))
    max_lag = maturity if maturity is not None else 24 * 7
    steps = 3  # start, second, third share; promotion ends the test
    width = horizon + max_lag + 2
    # counts that become visible at look t (index t), per step and arm
    due_matured = np.zeros((n_tests, width, steps, 2), dtype=np.int32)
    due_labelled = np.zeros_like(due_matured)
    due_agreed = np.zeros_like(due_matured)
    served = np.zeros((n_tests, steps, 2), dtype=np.int64)
    confidence = np.zeros((n_tests, steps, 2))
    matured = np.zeros_like(served)
    labelled = np.zeros_like(served)
    agreed = np.zeros_like(served)

    lags = {(arm, agrees): _delay_lags(mean, maturity, max_lag)
            for arm, means in ((CHAMPION, scenario.champion_delay_hours),
                               (CHALLENGER, scenario.challenger_delay_hours))
            for agrees, mean in ((True, means[0]), (False, means[1]))}
    agreement = np.array([scenario.champion_agreement, scenario.challenger_agreement])
    conf_mean = np.array([scenario.champion_confidence, scenario.challenger_confidence])

    states = [TestState(START, (TrafficStep(START, policy.start_traffic),)) for _ in range(n_tests)]
    step_of = np.zeros(n_tests, dtype=int)
    share = np.full(n_tests, policy.start_traffic / 100.0)
    max_traffic = np.full(n_tests, policy.start_traffic)
    active = np.ones(n_tests, dtype=bool)
    action = np.full(n_tests, "", dtype=object)
    rule = np.full(n_tests, "", dtype=object)
    hours = np.zeros(n_tests, dtype=int)
    labelled_at_end = np.zeros((n_tests, 2), dtype=np.int64)
    mature_lag = maturity if maturity is not None else 0

    for hour in range(horizon):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        look = hour + 1
        st = step_of[idx]
        n = rng.poisson(scenario.units_per_hour, idx.size)
        n_b = rng.binomial(n, np.minimum(share[idx] * scenario.routing_factor, 1.0))
        p_now = np.clip(agreement + scenario.agreement_drift_per_day * (hour + 0.5) / 24.0, 0.0, 1.0)
        for arm, m in ((CHAMPION, n - n_b), (CHALLENGER, n_b)):
            served[idx, st, arm] += m
            confidence[idx, st, arm] += rng.normal(m * conf_mean[arm], np.sqrt(m) * scenario.confidence_sd)
            due_matured[idx, look + mature_lag, st, arm] += m
            agree = rng.binomial(m, p_now[arm])
            for is_agree, k in ((True, agree), (False, m - agree)):
                will_label = rng.binomial(k, scenario.label_coverage)
                when = rng.multinomial(will_label, lags[(arm, is_agree)])[:, :-1]
                rows, lag = np.nonzero(when)
                due_labelled[idx[rows], look + lag, st[rows], arm] += when[rows, lag]
                if is_agree:
                    due_agreed[idx[rows], look + lag, st[rows], arm] += when[rows, lag]
        matured[idx] += due_matured[idx, look]
        labelled[idx] += due_labelled[idx, look]
        agreed[idx] += due_agreed[idx, look]

        now = START + timedelta(hours=look)
        for i in idx:
            state = states[i]
            counts = [StepCounts(*(ArmCounts(int(served[i, k, a]), float(confidence[i, k, a]),
                                             int(matured[i, k, a]), int(labelled[i, k, a]),
                                             int(agreed[i, k, a])) for a in (CHAMPION, CHALLENGER)))
                      for k in range(len(state.traffic_history))]
            d = decide(state, counts, now, policy)
            if d.final:
                active[i] = False
                action[i], rule[i], hours[i] = d.action, d.rule, look
                labelled_at_end[i] = labelled[i].sum(axis=0)
            elif d.traffic_percent != state.traffic_percent:
                states[i] = state.with_step(now, d.traffic_percent)
                step_of[i] += 1
                share[i] = d.traffic_percent / 100.0
                max_traffic[i] = d.traffic_percent
    # decide() ends every test at max_duration at the latest
    assert not active.any() and set(action) <= {PROMOTE, ROLLBACK, END_MAX_DURATION}
    return SimulationResult(action.astype(str), rule.astype(str), hours, max_traffic, labelled_at_end)


def fast_feedback_policy() -> RolloutPolicy:
    """The policy the error-rate simulations run: feedback within hours, a 6 h maturity window."""
    return replace(RolloutPolicy(), label_maturity=timedelta(hours=6))
