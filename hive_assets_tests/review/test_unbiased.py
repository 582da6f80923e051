"""The decisions stay unbiased with the queue on (cheap versions of benchmarks/bench_review_queue.py part 2)."""

import numpy as np

from hive_assets.review import ACTIVE, RANDOM, AAScenario, aa_false_promotions, choose_queue, margin_uncertainty
from hive_assets.rollout._controller import FINAL_ACTIONS, PROMOTE


def test_accuracy_on_the_random_share_estimates_the_pool_and_on_active_picks_does_not():
    # a pool whose correctness depends on the champion's uncertainty, as a real model's does
    rng = np.random.default_rng(7)
    draws, n, budget = 60, 400, 50
    random_hits, random_n, active_hits, active_n, pool_accuracy = 0, 0, 0, 0, []
    for _ in range(draws):
        top = rng.uniform(0.34, 1.0, n)
        proba = np.column_stack([top, (1 - top) * 0.6, (1 - top) * 0.4])
        u = margin_uncertainty(proba)
        correct = rng.random(n) < 0.95 - 0.5 * u
        pool_accuracy.append(correct.mean())
        choice = choose_queue(u, u[:, None], budget, 0.2, rng)
        sel = np.array(choice.selection)
        random_hits += correct[choice.index[sel == RANDOM]].sum()
        random_n += (sel == RANDOM).sum()
        active_hits += correct[choice.index[sel == ACTIVE]].sum()
        active_n += (sel == ACTIVE).sum()
    truth = float(np.mean(pool_accuracy))
    random_acc, active_acc = random_hits / random_n, active_hits / active_n
    se = np.sqrt(truth * (1 - truth) / random_n)
    assert abs(random_acc - truth) < 3 * se  # 600 random-share labels: unbiased within sampling error
    assert active_acc < truth - 0.15  # the active picks would report a much worse model


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
