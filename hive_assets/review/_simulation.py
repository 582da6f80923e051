"""A/A tests with the review queue on: does the A/B controller still promote no more often than it should?

One unit-level test at a time (`rollout.tally` and `rollout.decide`, the controller the platform runs):
both arms serve the same model; each served unit has the champion's uncertainty u ~ Beta(2, 2) and agrees
with its eventual label with probability 0.92 - 0.5 u (uncertain units are the ones the model gets wrong).
Organic labels arrive for a share `coverage` of the units after a log-normal delay (median 6 h). Once a day
the queue chooses as a refresh of the store does (`refresh_queue`), with `choose_refresh` on arrays: the
pool is every unit of the last 48 h still unlabelled or already requested (so the pools of two days
overlap), the day's random quota (`random_quota`: `random_share` x `budget`) takes the units of the pool not
random yet with the smallest permanent random numbers (an active request drawn becomes random, costing no
budget), the rest of `budget` goes to the most uncertain unrequested units, with diversity; reviewers
answer the new requests within the day. The A/B tally then keeps only random and organic labels
(`usable_for_decisions`: an active label made random counts from then on), or, for contrast, every label.
Looks every `look_hours`; the test ends at the controller's final decision or its maximum duration.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import numpy as np

from hive_assets.review._select import (
    ACTIVE, RANDOM, DaySoFar, choose_refresh, permanent_random_numbers, random_quota,
)

# hive_assets.rollout imports hive_assets.review (its A/B tally's label filter): the controller is imported
# where it is used, so importing either package first works

START = datetime(2026, 1, 5, tzinfo=timezone.utc)
NONE, ORGANIC_LABEL = 0, 1  # how a unit's label came (plus the queue's marks below)
MARKS = {ACTIVE: 2, RANDOM: 3}
SELECTION_OF_MARK = {NONE: None, ORGANIC_LABEL: None, MARKS[ACTIVE]: ACTIVE, MARKS[RANDOM]: RANDOM}


@dataclass(frozen=True)
class AAScenario:
    units_per_hour: float = 40.0
    coverage: float = 0.5
    budget: int = 100
    random_share: float = 0.2
    look_hours: int = 6
    filter_active: bool = True  # False: the A/B tally counts the queue's active labels too (contrast)


def aa_test(scenario: AAScenario, seed: int, policy) -> str:
    """The final action of one seeded A/A test under `policy` (a `rollout.RolloutPolicy`)."""
    from hive_assets.rollout import TestState, TrafficStep, decide, tally
    from hive_assets.rollout._controller import END_MAX_DURATION

    rng = np.random.default_rng([seed, 25])
    hours = int(policy.max_duration / timedelta(hours=1))
    n = rng.poisson(scenario.units_per_hour, size=hours)
    total = int(n.sum())
    hour_of = np.repeat(np.arange(hours), n)
    served = np.asarray(np.datetime64(START.replace(tzinfo=None), "us")
                        + ((hour_of * 3600 + rng.uniform(0, 3600, total)) * 1e6).astype("timedelta64[us]"))
    u = rng.beta(2.0, 2.0, total)
    agrees = rng.random(total) < 0.92 - 0.5 * u
    organic = rng.random(total) < scenario.coverage
    delay = (rng.lognormal(np.log(6.0), 1.0, total) * 3600e6).astype("timedelta64[us]")
    labelled_at = np.where(organic, served + delay, np.datetime64("NaT"))
    how = np.where(organic, ORGANIC_LABEL, NONE)
    challenger = rng.random(total)  # compared with the share in force when the unit is served
    # each unit's permanent random number, as the store's refresh hashes an opinion id (the same every day)
    permanent_u = permanent_random_numbers(seed, "aa", (str(i) for i in range(total)))
    state = TestState(START, (TrafficStep(START, policy.start_traffic),))
    is_challenger = np.zeros(total, dtype=bool)
    assigned = 0
    for hour in range(1, hours + 1):
        now = START + timedelta(hours=hour)
        now64 = np.datetime64(now.replace(tzinfo=None), "us")
        upto = int(n[:hour].sum())
        is_challenger[assigned:upto] = challenger[assigned:upto] < state.traffic_percent / 100.0
        assigned = upto
        if hour % 24 == 0 and scenario.budget:
            # the pool of `refresh_from_store`: unlabelled as of now, or requested (answered or not: the
            # day's random draw may take an active request, which then becomes random)
            requested = how[:upto] >= MARKS[ACTIVE]
            pool = np.flatnonzero((served[:upto] > now64 - np.timedelta64(48, "h"))
                                  & (np.isnat(labelled_at[:upto]) | (labelled_at[:upto] > now64) | requested))
            if pool.size:
                quota = random_quota(scenario.random_share, scenario.budget, rng)
                # one refresh a day: the whole budget is left, nothing of the day is made yet
                choice = choose_refresh(u[pool], u[pool, None], permanent_u[pool],
                                        [SELECTION_OF_MARK[int(h)] for h in how[pool]], scenario.budget, quota,
                                        DaySoFar())
                asked = pool[choice.requests.index]
                answered = now64 + (rng.uniform(0, 24, asked.size) * 3600e6).astype("timedelta64[us]")
                labelled_at[asked] = np.where(np.isnat(labelled_at[asked]), answered,
                                              np.minimum(labelled_at[asked], answered))
                how[asked] = [MARKS[s] for s in choice.requests.selection]
                how[pool[choice.made_random]] = MARKS[RANDOM]
        if hour % scenario.look_hours:
            continue
        kept = labelled_at[:upto].copy()
        if scenario.filter_active:
            kept[how[:upto] == MARKS[ACTIVE]] = np.datetime64("NaT")
        counts = tally(served[:upto], is_challenger[:upto], np.full(upto, 0.8), agrees[:upto], kept, state, now,
                       policy.label_maturity)
        decision = decide(state, counts, now, policy)
        if decision.final:
            return decision.action
        if decision.traffic_percent != state.traffic_percent:
            state = state.with_step(now, decision.traffic_percent)
    return END_MAX_DURATION  # (decide ends it at the last look already when look_hours divides the duration)


@dataclass(frozen=True)
class AAResult:
    promoted: int
    tests: int
    actions: dict[str, int]

    @property
    def rate(self) -> float:
        return self.promoted / self.tests


def aa_false_promotions(n_tests: int, seed: int, scenario: AAScenario = AAScenario(), policy=None) -> AAResult:
    """`n_tests` seeded A/A tests (seeds seed, seed + 1, ...); how many ended in a promotion. `policy`: the
    rollout's default with a 24 h label maturity (the simulated reviewers answer within a day)."""
    from hive_assets.rollout import RolloutPolicy
    from hive_assets.rollout._controller import PROMOTE

    policy = policy or replace(RolloutPolicy(), label_maturity=timedelta(hours=24))
    actions = [aa_test(scenario, seed + i, policy) for i in range(n_tests)]
    counts = {a: actions.count(a) for a in sorted(set(actions))}
    return AAResult(counts.get(PROMOTE, 0), n_tests, counts)
