"""Choosing the queue: priority terms, diversity, and the random share (one pool seen once here; days of
overlapping pools: test_refresh.py, test_random_share_across_days.py)."""

import numpy as np
import pandas as pd
import pytest

from hive_assets.review import (
    ACTIVE, RANDOM, choose_refresh, disagreement, diverse_top, drift_region_weight, margin_uncertainty, priority,
    random_quota,
)


def first_refresh(score, points, budget, random_share, rng, reasons=None):
    """A day's first refresh over a pool of unrequested candidates, as `refresh_queue` chooses it: the day's
    quota rounded at random, each candidate's permanent random number a uniform of `rng`."""
    score = np.asarray(score, dtype=float)
    quota = random_quota(random_share, budget, rng)
    return choose_refresh(score, points, rng.random(score.size), [None] * score.size, budget, quota,
                          reasons=reasons).requests


def test_margin_uncertainty_and_disagreement_by_hand():
    proba = np.array([[1 / 3, 1 / 3, 1 / 3], [0.9, 0.05, 0.05], [0.45, 0.45, 0.10], [0.2, 0.5, 0.3]])
    assert margin_uncertainty(proba) == pytest.approx([1.0, 0.15, 1.0, 0.8])
    other = np.array([[1 / 3, 1 / 3, 1 / 3], [0.05, 0.9, 0.05], [0.45, 0.45, 0.10], [0.3, 0.5, 0.2]])
    assert disagreement(proba, other) == pytest.approx([0.0, 0.85, 0.0, 0.1])
    score, reasons = priority(proba, other)
    assert score == pytest.approx([1.0, 1.0, 1.0, 0.9])
    assert reasons == ["uncertainty", "disagreement", "uncertainty", "uncertainty"]
    with pytest.raises(ValueError, match="shape"):
        disagreement(proba, other[:2])


def test_drift_weight_marks_the_over_represented_bin_only():
    reference = {"numeric": {"risk_score": {"edges": [0.5], "proportions": [0.5, 0.5]}},
                 "categorical": {"domain": {"categories": ["A", "B"], "proportions": [0.9, 0.1]}}}
    # window: 80% of rows above 0.5 (share 0.8 vs 0.5 in training), domain B 50% (vs 10%)
    frame = pd.DataFrame({"risk_score": [0.9] * 8 + [0.1] * 2, "domain": ["B"] * 5 + ["A"] * 5})
    risk = drift_region_weight(frame, reference, ["risk_score"])
    assert risk[:8] == pytest.approx(np.log(0.8 / 0.5)) and (risk[8:] == 0).all()
    domain = drift_region_weight(frame, reference, ["domain"])
    assert domain[:5] == pytest.approx(1.0) and (domain[5:] == 0).all()  # log(5) clipped to 1
    assert (drift_region_weight(frame, reference, []) == 0).all()


def test_near_duplicates_yield_one_request():
    rng = np.random.default_rng(0)
    spread = rng.normal(size=(200, 3))
    # 200 copies of one opinion first (the README's "200 near-duplicates yield one request")
    points = np.vstack([np.tile([[4.0, 4.0, 4.0]], (200, 1)), spread])
    score = np.concatenate([np.full(200, 1.0), rng.uniform(0.2, 0.8, size=200)])
    chosen = diverse_top(score, points, 20)
    assert (chosen < 200).sum() == 1  # the copies all outscore the rest: without diversity all 20 would be copies
    assert len(set(chosen.tolist())) == 20


def test_a_pool_of_duplicates_gets_one_request_per_plan_not_the_budget():
    """Five groups of 40 identical plans, of priorities 0.95 to 0.05, the least urgent first in position order:
    once each group had its request every candidate was worth 0, and the rest of the budget went by position,
    15 copies of the 0.05 plan. A copy of a chosen plan teaches nothing: one request per group."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 4)) * 3
    priorities = np.array([0.05, 0.1, 0.2, 0.9, 0.95])
    points, score = np.repeat(centres, 40, axis=0), np.repeat(priorities, 40)
    chosen = diverse_top(score, points, 20)
    assert sorted(score[chosen].tolist()) == sorted(priorities.tolist())  # one each, the best first
    assert score[chosen[0]] == 0.95
    # a candidate of no priority is not asked either; a near-duplicate (not identical) still is
    assert diverse_top(np.zeros(10), rng.normal(size=(10, 2)), 5).size == 0
    near = np.vstack([np.zeros((1, 2)), np.full((1, 2), 1e-3)])
    assert diverse_top(np.ones(2), near, 2, scale=1.0).size == 2


def test_an_active_pick_is_no_near_duplicate_of_the_random_share():
    """The random share is drawn first; the active picks' diversity started from nothing, so when a random
    pick was one of 200 identical, most uncertain candidates, an active pick asked for another copy of it
    (audit, stop 53: 3-9 of them asked per queue). The random picks now count as chosen."""
    rng = np.random.default_rng(3)
    points = np.vstack([np.tile([[4.0, 4.0, 4.0]], (200, 1)), rng.normal(size=(800, 3))])
    score = np.concatenate([np.full(200, 1.0), rng.uniform(0.2, 0.8, size=800)])
    for seed in range(20):
        choice = first_refresh(score, points, 100, 0.2, np.random.default_rng(seed))
        sel = np.array(choice.selection)
        copies_random = int((choice.index[sel == RANDOM] < 200).sum())
        copies_active = int((choice.index[sel == ACTIVE] < 200).sum())
        # a uniform sample of 20 from 1,000 holds 4 copies on average: those stand; the actives add one only
        # when no random pick is a copy
        assert copies_active == (0 if copies_random else 1), (seed, copies_random, copies_active)


def test_random_share_is_uniform_and_independent_of_the_score():
    n, budget, draws = 120, 20, 300
    rng = np.random.default_rng(1)
    points = rng.normal(size=(n, 2))
    score = np.linspace(0, 1, n)  # position i has score i / (n - 1)
    hits = np.zeros(n)
    stream = np.random.default_rng(2025)
    for _ in range(draws):
        choice = first_refresh(score, points, budget, 0.2, stream)
        sel = np.array(choice.selection)
        assert (sel == RANDOM).sum() == 4 and (sel == ACTIVE).sum() == 16
        assert choice.inclusion_probability[list(sel).index(RANDOM)] == pytest.approx(4 / n)
        hits[choice.index[sel == RANDOM]] += 1
    # low and high score halves drawn equally often: low - high has sd 2 * sqrt(draws * 4 * 1/4 * 116/119)
    low, high = hits[: n // 2].sum(), hits[n // 2:].sum()
    assert abs(low - high) < 4 * 2 * np.sqrt(draws * 116 / 119) and hits.sum() == draws * 4
    # and every candidate about k / n of the time: chi-square with n - 1 df, far under its 99.9% quantile
    expected = draws * 4 / n
    assert ((hits - expected) ** 2 / expected).sum() < 180
    # the active part prefers high scores (what the queue is for)
    choice = first_refresh(score, points, budget, 0.2, np.random.default_rng(0))
    active = choice.index[np.array(choice.selection) == ACTIVE]
    assert score[active].mean() > 0.6


def test_random_share_is_spread_through_the_queue_and_bad_arguments_refused():
    choice = first_refresh(np.arange(50.0), np.eye(50), 10, 0.2, np.random.default_rng(0))
    assert [i for i, s in enumerate(choice.selection) if s == RANDOM] == [4, 9]
    assert len(first_refresh(np.arange(5.0), np.eye(5), 0, 0.2, np.random.default_rng(0))) == 0
    assert len(first_refresh(np.arange(5.0), np.eye(5), 10, 0.2, np.random.default_rng(0))) == 5
    with pytest.raises(ValueError, match="budget"):
        first_refresh(np.arange(5.0), np.eye(5), -1, 0.2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="random_share"):
        first_refresh(np.arange(5.0), np.eye(5), 3, 1.5, np.random.default_rng(0))


def test_a_budget_that_covers_the_pool_is_a_census_and_a_small_one_keeps_its_random_share_on_average():
    """30 candidates and a budget of 100 asked all 30 but marked 24 of them active (dropped from every decision)
    with p = 0.2 for the rest; a budget of 2 had no random share at all (round(0.4) = 0)."""
    rng = np.random.default_rng(1)
    census = first_refresh(rng.random(30), rng.normal(size=(30, 4)), 100, 0.2, np.random.default_rng(1))
    assert sorted(census.index.tolist()) == list(range(30))
    assert set(census.selection) == {RANDOM} and set(census.inclusion_probability) == {1.0}
    stream = np.random.default_rng(7)
    randoms = [first_refresh(np.linspace(0, 1, 50), np.eye(50), 2, 0.2, stream).selection.count(RANDOM)
               for _ in range(4000)]
    # 0 or 1 random request a queue, 1 with probability 0.4: the mean within 4 sd of 0.4 over 4,000 queues
    assert set(randoms) == {0, 1} and abs(np.mean(randoms) - 0.4) < 4 * np.sqrt(0.4 * 0.6 / 4000)


@pytest.mark.parametrize("seed", range(8))
def test_a_queue_never_asks_one_candidate_twice_and_active_picks_skip_the_random_ones(seed):
    """20 of 30 candidates, half at random: the active half is the 10 best scores among the 20 the random
    draw left (with equidistant points, np.eye, diversity discounts nothing), never a candidate drawn at random."""
    n, budget = 30, 20
    score = np.arange(n, dtype=float)   # candidate i has score i: the best ones are the last positions
    choice = first_refresh(score, np.eye(n), budget, 0.5, np.random.default_rng(seed))
    index, selection = choice.index.tolist(), np.array(choice.selection)
    assert len(index) == budget and len(set(index)) == budget
    randoms, actives = set(choice.index[selection == RANDOM]), set(choice.index[selection == ACTIVE])
    assert len(randoms) == len(actives) == 10 and not randoms & actives
    left = [i for i in range(n) if i not in randoms]
    assert actives == set(left[-10:])


def test_choose_refresh_by_hand():
    """A day's first refresh: the quota's smallest u among those not random yet (an active request among
    them is made random, costing no budget), the random requests spread evenly; a census makes all random."""
    from hive_assets.review import DaySoFar, choose_refresh

    u = np.array([0.9, 0.05, 0.5, 0.01, 0.3, 0.02] + [0.6 + i / 100 for i in range(44)])
    requested = [None, ACTIVE, None, RANDOM, None, None] + [None] * 44
    choice = choose_refresh(np.arange(50.0), np.eye(50), u, requested, budget_left=10, quota=2)
    # u order: 3 (random already, skipped), 5, 1 (active: made random); so one new random request, 5
    assert choice.made_random.tolist() == [1] and choice.made_random_rate == pytest.approx(2 / 49)
    sel = choice.requests.selection
    assert choice.requests.index[[i for i, s in enumerate(sel) if s == RANDOM]].tolist() == [5]
    assert len(sel) == 10 and [i for i, s in enumerate(sel) if s == RANDOM] == [9]  # 1 random in 10 slots
    assert choice.first_rank == 1
    # the active picks: the best scores among the unrequested ones, none of them requested or drawn
    assert set(choice.requests.index[np.array(sel) == ACTIVE].tolist()) == set(range(41, 50))
    # continuing a day that made 6 requests (1 random) up to rank 6: ranks and the quota go on from there
    later = choose_refresh(np.arange(50.0), np.eye(50), u, requested, budget_left=4, quota=2,
                           today=DaySoFar(requested=6, random_requested=1, made_random=1, max_rank=6))
    assert later.first_rank == 7 and later.made_random.tolist() == []
    assert later.requests.index[np.array(later.requests.selection) == RANDOM].tolist() == [5]
    census = choose_refresh(np.arange(50.0), np.eye(50), u, requested, budget_left=48, quota=2)
    assert census.made_random.tolist() == [1] and set(census.requests.selection) == {RANDOM}
    assert sorted(census.requests.index.tolist()) == [i for i in range(50) if i not in (1, 3)]
