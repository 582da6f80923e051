"""The rollout's promises, checked by simulating whole tests under the real controller (fixed seeds).

Scenario: 40 units served per hour, 80 % of them eventually labelled, champion agreement 0.80,
feedback within hours (6 h maturity window) unless said otherwise. BENCHMARKS.md has the same
simulations at 1,000 tests each with their confidence intervals.
"""

from __future__ import annotations

import numpy as np

from hive_assets.rollout._controller import RolloutPolicy
from hive_assets.rollout._simulation import Scenario, fast_feedback_policy, simulate

FAST = fast_feedback_policy()


def test_a_a_false_promotions_at_most_5_percent():
    result = simulate(Scenario(), n_tests=200, seed=101, policy=FAST)
    assert result.promoted().mean() <= 0.05
    # the simulation really ran the schedule: most A/A tests reached 50 % and ran out of time
    assert np.mean(result.max_traffic == 50) > 0.5
    assert np.mean(result.action == "end_max_duration") > 0.8


def test_power_plus_5_points_promoted_with_at_most_3000_labels_per_arm():
    result = simulate(Scenario(challenger_agreement=0.85), n_tests=200, seed=102, policy=FAST)
    within_budget = result.labelled.max(axis=1) <= 3000
    assert np.mean(result.promoted() & within_budget) >= 0.80
    assert np.all(result.hours[result.promoted()] >= 72)
    assert np.all(result.labelled[result.promoted()] >= 1000)


def test_bad_challenger_rolled_back_before_50_percent():
    result = simulate(Scenario(challenger_agreement=0.75), n_tests=200, seed=103, policy=FAST)
    assert np.mean(result.rolled_back() & (result.max_traffic < 50)) >= 0.95
    assert not result.promoted().any()


def test_broken_routing_is_caught_by_the_srm_check():
    # the challenger receives 20 % while the test says 10 %
    result = simulate(Scenario(routing_factor=2.0), n_tests=100, seed=104, policy=FAST)
    assert np.all(result.rule == "srm")
    assert np.all(result.max_traffic == 10)          # before any expansion
    assert np.median(result.hours) <= 12


def test_slower_feedback_in_one_arm_does_not_inflate_a_a_promotions():
    # the challenger's corrections arrive after 8 h on average instead of 1 h; agreements in 1 h.
    # With the 48 h maturity window both arms' units get the same time for feedback.
    delayed = Scenario(challenger_delay_hours=(1.0, 8.0))
    result = simulate(delayed, n_tests=200, seed=105, policy=RolloutPolicy())
    assert result.promoted().mean() <= 0.05
    assert np.mean(result.max_traffic == 50) > 0.5


def test_simulation_is_deterministic_per_seed():
    a = simulate(Scenario(challenger_agreement=0.85), n_tests=10, seed=7, policy=FAST)
    b = simulate(Scenario(challenger_agreement=0.85), n_tests=10, seed=7, policy=FAST)
    assert np.array_equal(a.hours, b.hours) and np.array_equal(a.labelled, b.labelled)
    assert np.array_equal(a.action, b.action)
