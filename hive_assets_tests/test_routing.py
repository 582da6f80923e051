from __future__ import annotations

import numpy as np
from scipy import stats

from hive_assets.routing import CHALLENGER, assign_arm, bucket


def test_assignment_is_deterministic_and_salted():
    assert assign_arm("s1", "intent-1", 50) == assign_arm("s1", "intent-1", 50)
    arms_a = [assign_arm("s1", f"i{k}", 50) for k in range(2000)]
    arms_b = [assign_arm("s2", f"i{k}", 50) for k in range(2000)]
    assert arms_a != arms_b


def test_expansion_is_monotone():
    ids = [f"intent-{k}" for k in range(5000)]
    previous: set[str] = set()
    for traffic in (10, 25, 50, 100):
        current = {i for i in ids if assign_arm("salt", i, traffic) == CHALLENGER}
        assert previous <= current
        previous = current
    assert len(previous) == len(ids)


def test_split_matches_the_traffic_share():
    ids = [f"intent-{k}" for k in range(20000)]
    n = sum(assign_arm("x", i, 10) == CHALLENGER for i in ids)
    # binomial test: the hash behaves like a fair 10% coin
    assert stats.binomtest(n, len(ids), 0.10).pvalue > 0.001
    buckets = np.array([bucket("x", i) for i in ids])
    assert stats.kstest(buckets / 100.0, "uniform").pvalue > 0.001
