"""A refresh of the store's queue over days: a refresh stopped part-way and rerun, a rerun with nothing
left to do, a plan served again the next day, and the random draw taking actively requested opinions."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from hive_assets.data import to_utc
from hive_assets.data.store.sqlite import SQLiteStore
from hive_assets.features import features_frame
from hive_assets.review import ACTIVE, COLLECTION, RANDOM, permanent_random_numbers, refresh_queue
from hive_assets.simulator import make_plans

DAY1 = datetime(2026, 3, 2, 10, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)
PLANS = make_plans(120, seed=11, now=DAY1, days=1)


def pool(first: int, last: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Opinions op-<i> on PLANS[i] for i in [first, last); the champion unsure on every third."""
    plans = PLANS[first:last]
    candidates = pd.DataFrame({"opinion_id": [f"op-{i:03d}" for i in range(first, last)],
                               "plan_id": [p["plan_id"] for p in plans]})
    proba = np.array([[0.4, 0.35, 0.25] if i % 3 == 0 else [0.8, 0.15, 0.05] for i in range(first, last)])
    return candidates, features_frame(plans), proba


def refresh(store, now, first, last, budget=10, **kw):
    candidates, features, proba = pool(first, last)
    return refresh_queue(store, "business", now, candidates, features, proba, daily_budget=budget, **kw)


def requests_made(store) -> dict[str, tuple]:
    return {d["request_id"]: (d["selection"], d["rank"], d["requested_at"], d["inclusion_probability"])
            for d in store.find(COLLECTION)}


class Killed(Exception):
    pass


class DyingStore(SQLiteStore):
    """Raises on the review-request write after `writes_left` of them, as a run killed there; None: never."""

    writes_left: int | None = None

    def _count_write(self, collection: str) -> None:
        if collection == COLLECTION and self.writes_left is not None:
            if self.writes_left == 0:
                raise Killed(collection)
            self.writes_left -= 1

    def insert_new(self, collection, doc):
        self._count_write(collection)
        return super().insert_new(collection, doc)

    def update_one(self, collection, filter, set_fields):
        if "made_random_at" in set_fields:  # an active request made random; link/expire updates pass
            self._count_write(collection)
        return super().update_one(collection, filter, set_fields)


# day 1 asks 10 of op-000..op-059; day 2's pool is those (a window of 2 days) and op-060..op-069: with
# random_share 0.5 and seed 2, day 2 makes random 2 of day 1's active requests (the tests assert it)
DAY2_POOL = (0, 70)
SHAPE = {"random_share": 0.5, "seed": 2}


def two_days(store):
    refresh(store, DAY1, 0, 60, **SHAPE)
    return refresh(store, DAY2, *DAY2_POOL, **SHAPE)


def test_day_two_draws_from_the_active_requests_of_day_one_too(tmp_path):
    """The day's random picks are the opinions of the pool not random yet with the smallest permanent
    random numbers, whether unrequested or requested actively on day 1 (the latter become random)."""
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        refresh(store, DAY1, 0, 60, **SHAPE)
        day1 = {d["opinion_id"]: d["selection"] for d in store.find(COLLECTION)}
        result = refresh(store, DAY2, *DAY2_POOL, **SHAPE)
        docs = {d["opinion_id"]: d for d in store.find(COLLECTION)}
    ids = [f"op-{i:03d}" for i in range(*DAY2_POOL)]
    u = dict(zip(ids, permanent_random_numbers(2, "business", ids)))
    not_random_yet = sorted((o for o in ids if day1.get(o) != RANDOM), key=u.get)
    # quota 5 (0.5 x 10, whole): the five smallest u among them, computed here from the hash alone
    expected = set(not_random_yet[:5])
    made_today = {o for o, d in docs.items() if d["selection"] == RANDOM and o not in
                  {o for o, s in day1.items() if s == RANDOM}}
    assert made_today == expected
    upgraded = {o for o in expected if o in day1}
    assert len(upgraded) == result.made_random == 2 and result.requested == 10
    for o in upgraded:
        assert to_utc(docs[o]["made_random_at"]) == DAY2 and to_utc(docs[o]["requested_at"]) == DAY1
        assert docs[o]["selection"] == RANDOM and docs[o]["inclusion_probability"] == pytest.approx(5 / 65)
    # day 2's new requests: one rank sequence 1..10, the day's new random ones among them
    day2 = [d for d in docs.values() if to_utc(d["requested_at"]) == DAY2]
    assert sorted(d["rank"] for d in day2) == list(range(1, 11))
    assert {d["opinion_id"] for d in day2 if d["selection"] == RANDOM} == expected - upgraded


@pytest.mark.parametrize("writes_before_kill", [0, 1, 2, 4, 7, 9, 10])
def test_a_refresh_killed_part_way_is_completed_by_its_rerun_with_the_same_choice(tmp_path, writes_before_kill):
    """Day 2's writes: the active requests made random first, then 10 inserts in rank order. Killed after
    `writes_before_kill` of them, the rerun (an hour later, the same pool) ends with exactly the requests
    an uninterrupted refresh writes: ids, selections, ranks, rates."""
    with SQLiteStore(tmp_path / "whole.sqlite") as whole:
        complete = two_days(whole)
        expected = requests_made(whole)
    assert (complete.made_random, complete.requested) == (2, 10)
    with DyingStore(tmp_path / "killed.sqlite") as store:
        refresh(store, DAY1, 0, 60, **SHAPE)
        store.writes_left = writes_before_kill
        with pytest.raises(Killed):
            refresh(store, DAY2, *DAY2_POOL, **SHAPE)
        store.writes_left = None
        written = len(requests_made(store)) - 10
        rerun = refresh(store, DAY2 + timedelta(hours=1), *DAY2_POOL, **SHAPE)
        after = requests_made(store)
    assert written == max(0, writes_before_kill - complete.made_random)
    assert rerun.requested == 10 - written
    # requested_at of the rerun's requests is its own time; everything else as the uninterrupted refresh
    assert {k: (s, r, p) for k, (s, r, _, p) in after.items()} == {k: (s, r, p) for k, (s, r, _, p) in expected.items()}


def test_a_rerun_with_nothing_left_to_do_writes_nothing(tmp_path):
    """A budget that covers the unrequested opinions is a census: all of them asked, every active request
    of the pool made random. A rerun on the same pool then has budget left but nothing to ask or draw."""
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        refresh(store, DAY1, 0, 60)  # 10 of 60: 2 random, 8 active
        assert sorted(d["selection"] for d in store.find(COLLECTION)).count(ACTIVE) == 8
        census = refresh(store, DAY2, 0, 60, budget=100)
        assert (census.requested, census.made_random) == (50, 8)
        assert {d["selection"] for d in store.find(COLLECTION)} == {RANDOM}
        snapshot = sorted(map(str, store.find(COLLECTION)))
        for later in (DAY2, DAY2 + timedelta(hours=2)):
            again = refresh(store, later, 0, 60, budget=100)
            assert (again.requested, again.made_random, again.budget_left) == (0, 0, 50)
            assert sorted(map(str, store.find(COLLECTION))) == snapshot
        # and a spent budget: nothing either
        refresh(store, DAY2 + timedelta(days=1), 0, 120)
        snapshot = sorted(map(str, store.find(COLLECTION)))
        assert refresh(store, DAY2 + timedelta(days=1, hours=1), 0, 120).requested == 0
        assert sorted(map(str, store.find(COLLECTION))) == snapshot


def test_a_plan_served_again_the_next_day_is_not_asked_again(tmp_path):
    """Day 1 asks about the most uncertain opinion, on plan X; day 2 serves plan X again (a new opinion,
    the same features, again the most uncertain). Its near-duplicate was asked yesterday and is in the
    pool (2 days): today's pick goes elsewhere. Without yesterday's opinion on X, today's is asked."""
    def day(store, now, opinions, budget=5):
        rows = [int(o.split("-")[1]) if not o.startswith("x") else 119 for o in opinions]
        candidates = pd.DataFrame({"opinion_id": opinions, "plan_id": [PLANS[i]["plan_id"] for i in rows]})
        proba = np.tile([0.9, 0.05, 0.05], (len(rows), 1))
        proba[[o.startswith("x") for o in opinions]] = [0.34, 0.33, 0.33]
        return refresh_queue(store, "business", now, candidates, features_frame([PLANS[i] for i in rows]), proba,
                             daily_budget=budget, random_share=0.0)

    day1 = [f"op-{i:03d}" for i in range(50)] + ["x-day1"]
    day2 = [f"op-{i:03d}" for i in range(50, 100)] + ["x-day2"]
    with SQLiteStore(tmp_path / "a.sqlite") as store:
        day(store, DAY1, day1)
        assert store.count(COLLECTION, {"opinion_id": "x-day1"}) == 1
        assert day(store, DAY2, day1 + day2).requested == 5
        assert store.count(COLLECTION, {"opinion_id": "x-day2"}) == 0
    with SQLiteStore(tmp_path / "b.sqlite") as store:  # the same day 2 without the day-1 opinion on X
        assert day(store, DAY2, day1[:-1] + day2).requested == 5
        assert store.count(COLLECTION, {"opinion_id": "x-day2"}) == 1
