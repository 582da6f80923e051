"""Routing (SPEC section 7): deterministic, uniform, monotone, and pinned against hash changes."""

from __future__ import annotations

import numpy as np
import pytest

from hive_assets.routing import CHALLENGER, CHAMPION, MIN_TRAFFIC_PERCENT, assign_arm, bucket

SALT = "a1b2c3d4e5f60718"


@pytest.fixture(scope="module")
def million_buckets() -> np.ndarray:
    return np.fromiter((bucket(SALT, f"intent-{k}") for k in range(1_000_000)), float, 1_000_000)


@pytest.mark.parametrize("target", [10.0, 25.0, 50.0])
def test_a_million_assignments_split_within_0_2_points(million_buckets, target):
    share = 100.0 * np.mean(million_buckets < target)
    assert abs(share - target) <= 0.2


def test_assign_arm_is_the_bucket_threshold(million_buckets):
    for k in range(20_000):
        expected = CHALLENGER if million_buckets[k] < 25.0 else CHAMPION
        assert assign_arm(SALT, f"intent-{k}", 25.0) == expected


def test_no_unit_leaves_the_challenger_when_traffic_grows():
    ids = [f"unit-{k}" for k in range(50_000)]
    previous: set[str] = set()
    for traffic in (10, 25, 50, 100):
        current = {i for i in ids if assign_arm(SALT, i, traffic) == CHALLENGER}
        assert previous <= current, f"units left the challenger at {traffic} %"
        assert len(current) > len(previous)
        previous = current
    assert len(previous) == len(ids)


# Computed once with the current bucket(); a change of hash, salt joining or resolution would
# silently re-route every running test, so it must fail here first.
PINNED = [
    (SALT, "intent-0", 97.2485),
    (SALT, "intent-1", 79.6116),
    (SALT, "intent-4", 8.5745),
    (SALT, "intent-6", 21.3226),
    (SALT, "3f2c9a7e-5b1d-4c8e-9a0f-1d2e3f4a5b6c", 18.4976),
    ("business_v3_20260105_120000", "intent-42", 49.9657),
    ("", "", 60.8438),
]


@pytest.mark.parametrize("salt,intent_id,expected", PINNED)
def test_pinned_buckets(salt, intent_id, expected):
    assert bucket(salt, intent_id) == expected


def test_pinned_arms():
    assert assign_arm(SALT, "intent-4", 10) == CHALLENGER   # 8.5745 < 10
    assert assign_arm(SALT, "intent-6", 10) == CHAMPION     # 21.3226 >= 10
    assert assign_arm(SALT, "intent-6", 25) == CHALLENGER
    assert assign_arm(SALT, "intent-0", 50) == CHAMPION
    assert assign_arm(SALT, "intent-0", 100) == CHALLENGER
    assert assign_arm(SALT, "intent-4", 0) == CHAMPION


def test_assignment_is_salted_per_test():
    # two tests over the same units route them independently (a new test reshuffles who sees the challenger)
    arms_a = [assign_arm("s1", f"i{k}", 50) for k in range(2000)]
    arms_b = [assign_arm("s2", f"i{k}", 50) for k in range(2000)]
    assert arms_a != arms_b


def test_buckets_are_uniform(million_buckets):
    from scipy import stats

    assert stats.kstest(million_buckets[:20_000] / 100.0, "uniform").pvalue > 0.001


def test_no_share_under_the_resolution_routes_fewer_units_and_a_test_refuses_it(million_buckets, tmp_path):
    from datetime import datetime, timezone

    from hive_assets.data import SQLiteStore
    from hive_assets.rollout import open_test

    # a share under the resolution routes the units at bucket 0, exactly as the smallest share does
    at_zero = np.flatnonzero(million_buckets == 0.0)
    assert at_zero.size >= 1  # the comparisons below are about some unit, not an empty set
    for tiny in (1e-300, 1e-9, MIN_TRAFFIC_PERCENT / 2):
        assert np.array_equal(np.flatnonzero(million_buckets < tiny), at_zero)
    assert np.array_equal(np.flatnonzero(million_buckets < MIN_TRAFFIC_PERCENT), at_zero)
    store, now = SQLiteStore(tmp_path / "store.sqlite"), datetime(2026, 1, 5, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match=r"share in \[0.0001, 100\) %"):
        open_test(store, "business", "1", "2", 1e-300, now)
    opened, created = open_test(store, "business", "1", "2", MIN_TRAFFIC_PERCENT, now)
    assert created and opened["traffic_percent"] == MIN_TRAFFIC_PERCENT
