"""What a look reads from the store: each unit's label frozen at the end of its feedback window, and
confidences validated (SQLite store, no services)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np

from hive_assets.data import SQLiteStore, TrustPolicy, latest_trusted_feedback
from hive_assets.rollout import RolloutPolicy, StepCounts, arm_observations, evaluate, tally
from hive_assets.rollout._controller import TestState, TrafficStep

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
WINDOW = timedelta(hours=48)
TEST = {"test_id": "technical_v2_20260302_090000", "specialist_type": "technical", "status": "running",
        "started_at": T0, "traffic_percent": 50.0, "traffic_history": [{"at": T0, "percent": 50.0}]}


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def opinion(oid: str, served: float, arm: str, recommendation: str = "approve", **opinion_fields) -> dict:
    body = {"recommendation": recommendation, "risk_score": 0.5, "reasoning_summary": "", "reasoning_factors": [],
            **opinion_fields}
    return {"opinion_id": oid, "plan_id": f"plan-{oid}", "intent_id": f"intent-{oid}", "specialist_type": "technical",
            "specialist_version": "2" if arm == "challenger" else "1", "evaluated_at": at(served), "opinion": body,
            "metadata": {"ab_test_id": TEST["test_id"], "ab_arm": arm}}


def feedback(fid: str, oid: str, submitted: float, label: str) -> dict:
    return {"feedback_id": fid, "opinion_id": oid, "plan_id": f"plan-{oid}", "specialist_type": "technical",
            "human_recommendation": label, "human_rating": 0.9, "submitted_by": "reviewer-1",
            "submitted_at": at(submitted), "feedback_source": "human_expert", "metadata": {}}


def world(tmp_path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "store.sqlite")
    store.upsert_many("specialist_opinions", [
        opinion("a", 0.0, "challenger", confidence_score=0.9),
        opinion("b", 0.0, "champion", confidence_score=0.8),
        opinion("c", 1.0, "challenger", confidence_score=None),
        opinion("d", 2.0, "champion", confidence_score="high"),
        opinion("e", 3.0, "challenger"),                       # no confidence at all
    ])
    store.upsert_many("specialist_feedback", [
        feedback("a1", "a", 2.0, "approve"),     # agrees ...
        feedback("a2", "a", 60.0, "reject"),     # ... corrected 60 h after serving: after its window
        feedback("b1", "b", 3.0, "approve"),
        feedback("b2", "b", 20.0, "reject"),     # corrected inside the window: the label is the correction
        feedback("c1", "c", 51.0, "approve"),    # first label 50 h after serving: never inside the window
        feedback("d1", "d", 10.0, "approve"),
    ])
    return store


def per_arm(counts: list[StepCounts]) -> dict[str, tuple[int, int, int, int]]:
    return {arm: tuple(sum(getattr(getattr(c, arm), f) for c in counts)
                       for f in ("served", "matured", "labelled", "agreements"))
            for arm in ("champion", "challenger")}


def test_a_correction_after_the_window_neither_changes_nor_removes_the_units_label(tmp_path):
    store = world(tmp_path)
    policy = RolloutPolicy(label_maturity=WINDOW)
    looks = [48.5, 49.5, 55.0, 61.0, 80.0]
    seen = [per_arm(evaluate(store, TEST, at(h), policy)[1]) for h in looks]
    # by hand from the documents: a (challenger) agrees, frozen; b (champion) disagrees (its correction
    # came at 20 h); c never labelled in its window; d (champion) agrees once matured (served at 2 h)
    assert seen[0] == {"champion": (2, 1, 1, 0), "challenger": (3, 1, 1, 1)}
    assert seen[1] == {"champion": (2, 1, 1, 0), "challenger": (3, 2, 1, 1)}      # c matured (1 h + 48 h), unlabelled
    assert seen[-1] == {"champion": (2, 2, 2, 1), "challenger": (3, 3, 1, 1)}
    for before, after in zip(seen, seen[1:]):
        for arm in before:
            assert all(x <= y for x, y in zip(before[arm], after[arm])), (before, after)
    # what the audit found: with the latest label as of now, a's correction (60 h) is outside the window
    # and the unit left the sample at the look after it
    latest, _, _ = latest_trusted_feedback(store, ["a"], at(61), TrustPolicy())
    assert latest["a"]["feedback_id"] == "a2"


def test_provisional_labels_of_young_units_are_the_ones_known_now(tmp_path):
    store = world(tmp_path)
    obs = arm_observations(store, TEST, at(10), maturity=WINDOW)
    counts = tally(obs.served_at, obs.is_challenger, obs.confidence, obs.agrees, obs.labelled_at,
                   TestState(T0, (TrafficStep(T0, 50.0),)), at(10), WINDOW)
    champion, challenger = counts[0].champion, counts[0].challenger
    assert (champion.matured, champion.interim_labelled, champion.interim_agreements) == (0, 2, 2)  # b1, d1
    assert (challenger.matured, challenger.interim_labelled, challenger.interim_agreements) == (0, 1, 1)  # a1


def test_missing_or_non_numeric_confidences_are_excluded_and_counted_not_zero(tmp_path):
    store = world(tmp_path)
    obs = arm_observations(store, TEST, at(5), maturity=WINDOW)
    assert sum(math.isnan(c) for c in obs.confidence) == 3
    counts = tally(obs.served_at, obs.is_challenger, obs.confidence, obs.agrees, obs.labelled_at,
                   TestState(T0, (TrafficStep(T0, 50.0),)), at(5), WINDOW)
    challenger, champion = counts[0].challenger, counts[0].champion
    assert (challenger.invalid_confidence, challenger.mean_confidence) == (2, 0.9)   # not (0.9 + 0 + 0) / 3
    assert (champion.invalid_confidence, champion.mean_confidence) == (1, 0.8)
    doc = challenger.as_dict()
    assert doc["invalid_confidence"] == 2 and doc["mean_confidence"] == 0.9


def test_out_of_range_and_nan_confidences_in_tally():
    rng = np.random.default_rng(3)
    n = 400
    confidence = rng.uniform(0.5, 1.0, n)
    confidence[::7] = np.nan
    confidence[1::11] = 1.5
    confidence[2::13] = -0.2
    confidence[3::17] = np.inf
    challenger = rng.random(n) < 0.5
    served = np.datetime64(T0.replace(tzinfo=None), "us") + np.arange(n) * np.timedelta64(60, "s")
    nat = np.full(n, np.datetime64("NaT", "us"))
    counts = tally(served, challenger, confidence, np.zeros(n, bool), nat,
                   TestState(T0, (TrafficStep(T0, 50.0),)), at(24), WINDOW)
    for arm, mask in (("challenger", challenger), ("champion", ~challenger)):
        c = getattr(counts[0], arm)
        values = confidence[mask]
        valid = values[np.isfinite(values) & (values >= 0) & (values <= 1)]
        assert c.invalid_confidence == mask.sum() - valid.size
        assert math.isclose(c.mean_confidence, float(valid.mean()), rel_tol=1e-12)


def test_feedback_exactly_at_served_plus_maturity_is_the_label_an_hour_later_is_not(tmp_path):
    """A unit's label is the latest feedback submitted at or before served + maturity (48 h): both ends of
    the window are in, as in `tally`'s `delay <= window`."""
    store = SQLiteStore(tmp_path / "store.sqlite")
    store.upsert_many("specialist_opinions", [
        opinion("x", 0.0, "challenger", confidence_score=0.9),
        opinion("y", 0.0, "champion", confidence_score=0.9),
        opinion("z", 1.0, "challenger", confidence_score=0.9),
        opinion("w", 1.0, "champion", confidence_score=0.9),
    ])
    store.upsert_many("specialist_feedback", [
        feedback("x1", "x", 48.0, "approve"),   # exactly served + 48 h: x's label, agrees
        feedback("y1", "y", 49.0, "approve"),   # an hour after its window: y stays unlabelled
        feedback("z1", "z", 3.0, "approve"),
        feedback("z2", "z", 49.0, "reject"),    # a correction exactly at 1 h + 48 h: z's label, disagrees
        feedback("w1", "w", 3.0, "approve"),    # w's label, agrees ...
        feedback("w2", "w", 50.0, "reject"),    # ... its correction an hour after the window changes nothing
    ])
    obs = arm_observations(store, TEST, at(60), maturity=WINDOW)
    order = [o["opinion_id"] for o in store.find("specialist_opinions", {"specialist_type": "technical",
                                                                        "metadata.ab_test_id": TEST["test_id"]})]
    labelled = dict(zip(order, obs.labelled_at.tolist()))
    naive = lambda hours: at(hours).replace(tzinfo=None)
    assert labelled == {"x": naive(48), "y": None, "z": naive(49), "w": naive(3)}
    assert dict(zip(order, obs.agrees.tolist())) == {"x": True, "y": False, "z": False, "w": True}
    state = TestState(T0, (TrafficStep(T0, 50.0),))
    counts = tally(obs.served_at, obs.is_challenger, obs.confidence, obs.agrees, obs.labelled_at, state, at(60),
                   WINDOW)
    assert per_arm(counts) == {"champion": (2, 2, 1, 1), "challenger": (2, 2, 2, 1)}
    # the look at exactly 48 h: x has just matured and its label, submitted that instant, counts
    obs = arm_observations(store, TEST, at(48), maturity=WINDOW)
    counts = tally(obs.served_at, obs.is_challenger, obs.confidence, obs.agrees, obs.labelled_at, state, at(48),
                   WINDOW)
    assert per_arm(counts)["challenger"] == (2, 1, 1, 1)


def test_a_futile_end_is_recorded_as_ended_with_the_champion_kept(tmp_path):
    # what a look writes for the `futile` stop: the test closed as `ended` (the maximum duration's status,
    # champion kept: `settle` removes the challenger alias and writes no rollback row), its reason, an intent
    from hive_assets import registry
    from hive_assets.rollout import ENDED, Decision, open_test, outcome_intent_id, record_decision_in_test
    from hive_assets.rollout._controller import END_FUTILE

    store = SQLiteStore(tmp_path / "store.sqlite")
    test, _ = open_test(store, "technical", "1", "2", 10.0, now=T0)
    reason = "futile: cannot reach +0.02, the gain a promotion needs: ...; champion kept"
    doc = record_decision_in_test(store, test, Decision(END_FUTILE, 0.0, "futile", reason), at(264), [])
    stored = store.find_one("ab_tests", {"test_id": test["test_id"]})
    assert (doc["status"], stored["status"], stored["end_reason"], stored["verdict"]) == (ENDED, ENDED, reason,
                                                                                          END_FUTILE)
    assert stored["traffic_percent"] == 0.0 and stored["checks"][-1]["rule"] == "futile"
    intent = registry.get_intent(store, outcome_intent_id(test["test_id"]))
    assert intent["params"]["action"] == END_FUTILE and intent["params"]["fields"]["status"] == ENDED


def test_the_time_bounded_read_gives_the_look_the_unbounded_read_gave(tmp_path, monkeypatch):
    # a look reads the test's opinions from its first traffic step on (`evaluated_at`, indexed with the
    # specialist), not every opinion of the specialist: the same decision and counts, whatever the store
    # holds before (old history, another test's units, a unit tagged before the opening by a skewed clock)
    from hive_assets.rollout import _apply

    store = world(tmp_path)
    other = {**opinion("z", 30.0, "challenger"), "metadata": {"ab_test_id": "technical_v1_old", "ab_arm": "challenger"}}
    history = [{**opinion(f"h{i}", -24.0 * (1 + i), "champion"), "metadata": {}} for i in range(30)]
    store.upsert_many("specialist_opinions", [*history, other, opinion("early", -0.5, "challenger"),
                                              opinion("late", 70.0, "champion")])
    store.upsert_many("specialist_feedback", [feedback("early1", "early", 1.0, "approve"),
                                              feedback("late1", "late", 72.0, "reject")])
    where = _apply.test_opinions_filter(TEST)
    assert where == {"specialist_type": "technical", "metadata.ab_test_id": TEST["test_id"],
                     "evaluated_at": {"$gte": T0}}
    # a test document as SQLite returns it (ISO text) gives the same bound; one without a start, none
    as_text = {**TEST, "started_at": T0.isoformat(), "traffic_history": [{"at": T0.isoformat(), "percent": 50.0}]}
    assert _apply.test_opinions_filter(as_text) == where
    assert "evaluated_at" not in _apply.test_opinions_filter({"test_id": "t", "specialist_type": "technical"})
    bounded = {h: evaluate(store, TEST, at(h), RolloutPolicy(label_maturity=WINDOW)) for h in (10, 50, 80, 130)}
    unbounded = {"specialist_type": "technical", "metadata.ab_test_id": TEST["test_id"]}
    monkeypatch.setattr(_apply, "test_opinions_filter", lambda test: unbounded)
    for h, (decision, counts) in bounded.items():
        again, counts_again = evaluate(store, TEST, at(h), RolloutPolicy(label_maturity=WINDOW))
        assert (counts, decision.action, decision.rule, decision.reason) == \
            (counts_again, again.action, again.rule, again.reason), h
    # the unbounded read did see the early unit (tally drops it: served before the first step); the bounded
    # one never reads it
    assert "early" in {o["opinion_id"] for o in store.find("specialist_opinions", unbounded)}
    assert "early" not in {o["opinion_id"] for o in store.find("specialist_opinions", where)}
