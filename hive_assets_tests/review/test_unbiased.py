"""The decisions stay unbiased with the queue on (cheap versions of benchmarks/bench_review_queue.py part 2)."""

import numpy as np

from hive_assets.review import (
    ACTIVE, RANDOM, AAScenario, DaySoFar, aa_false_promotions, choose_refresh, margin_uncertainty, random_quota,
)
from hive_assets.rollout._controller import FINAL_ACTIONS, PROMOTE


def test_accuracy_on_the_random_share_estimates_the_pool_and_on_active_picks_does_not():
    """Daily pools that overlap as the product's do (each opinion in the pools of the day it arrives and the
    next, unlabelled or already requested), chosen by `choose_refresh` as `refresh_queue` runs it once a
    day; the random share includes the active requests the day's draw made random."""
    rng = np.random.default_rng(7)
    days, per_day, budget = 60, 400, 50
    top = rng.uniform(0.34, 1.0, days * per_day)
    # correctness depends on the champion's uncertainty, as a real model's does
    uncertainty = margin_uncertainty(np.column_stack([top, (1 - top) * 0.6, (1 - top) * 0.4]))
    correct = rng.random(days * per_day) < 0.95 - 0.5 * uncertainty
    permanent_u = rng.random(days * per_day)
    selection: list = [None] * (days * per_day)
    made_random = 0
    for day in range(days):
        pool = np.arange(max(day - 1, 0) * per_day, (day + 1) * per_day)
        choice = choose_refresh(uncertainty[pool], uncertainty[pool, None], permanent_u[pool],
                                [selection[i] for i in pool], budget, random_quota(0.2, budget, rng), DaySoFar())
        for i, s in zip(pool[choice.requests.index], choice.requests.selection):
            selection[i] = s
        for i in pool[choice.made_random]:
            selection[i] = RANDOM
        made_random += choice.made_random.size
    selection = np.array(selection, dtype=object)
    random_rows, active_rows = selection == RANDOM, selection == ACTIVE
    assert random_rows.sum() == days * budget // 5 and made_random > 0  # the quota, some of it actives made random
    truth = float(correct.mean())
    random_acc, active_acc = correct[random_rows].mean(), correct[active_rows].mean()
    se = np.sqrt(truth * (1 - truth) / random_rows.sum())
    assert abs(random_acc - truth) < 3 * se  # 600 random-share labels: unbiased within sampling error
    # the active picks would report a much worse model (measured 0.565 against 0.687, 2,400 picks: sd 0.01; less
    # than on one pool seen once, since yesterday's requests in the pool spread today's picks by diversity)
    assert active_acc < truth - 0.08


def test_a_few_seeded_aa_tests_with_the_queue_on_promote_nothing():
    # the benchmark runs 200 (false promotion <= 5%); 12 here: P(>= 2 promotions | 5%) is 12%, | 1%: 0.6%
    result = aa_false_promotions(12, seed=100, scenario=AAScenario(units_per_hour=30.0))
    assert result.tests == 12 and result.promoted <= 1
    assert sum(result.actions.values()) == 12
    # every test ends in one of the controller's final actions (the ones `promoted` is counted among)
    assert set(result.actions) <= FINAL_ACTIONS and result.actions.get(PROMOTE, 0) == result.promoted
    # also when the last look falls before the maximum duration (looks every 5 h of 14 days)
    assert set(aa_false_promotions(1, seed=100, scenario=AAScenario(units_per_hour=30.0, look_hours=5)).actions) \
        <= FINAL_ACTIONS


def test_the_aa_simulation_chooses_as_a_refresh_over_overlapping_pools(monkeypatch):
    """Each day's choice of one A/A test, recorded: the pool holds units requested on earlier days (48 h
    pools overlap), the day's random quota (20 of a budget of 100) is met by new random requests plus active
    requests made random, and over the 14 days some active requests are made random."""
    from hive_assets.review import _simulation
    from hive_assets.rollout import RolloutPolicy

    days = []

    def recording(score, points, u, requested, budget_left, quota, today, *args):
        choice = choose_refresh(score, points, u, requested, budget_left, quota, today, *args)
        days.append((list(requested), quota, choice))
        return choice

    monkeypatch.setattr(_simulation, "choose_refresh", recording)
    _simulation.aa_test(AAScenario(units_per_hour=30.0), 100, RolloutPolicy())
    assert len(days) >= 13
    for day, (requested, quota, choice) in enumerate(days):
        assert quota == 20 and len(choice.requests) == 100
        assert choice.requests.selection.count(RANDOM) + choice.made_random.size == 20
        # from the second day on, requests of the last two days whose units were served within 48 h are
        # still in the pool (the old window left every requested unit out)
        already = sum(s is not None for s in requested)
        assert already == 0 if day == 0 else 0 < already <= 200
    assert sum(c.made_random.size for _, _, c in days) > 0
