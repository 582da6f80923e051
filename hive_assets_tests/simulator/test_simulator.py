from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from hive_assets.simulator import make_plans, policy_label, simulate
from hive_assets.data import to_utc
from hive_assets.data.store import SQLiteStore

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def test_same_seed_same_documents(tmp_path):
    a, b = SQLiteStore(tmp_path / "a.sqlite"), SQLiteStore(tmp_path / "b.sqlite")
    simulate(a, plans=80, seed=3, now=NOW)
    simulate(b, plans=80, seed=3, now=NOW)
    for coll in ("cognitive_ledger", "specialist_opinions", "specialist_feedback", "intentions_audit"):
        assert list(a.find(coll)) == list(b.find(coll))
    simulate(a, plans=80, seed=3, now=NOW)  # re-running replaces, never duplicates
    assert a.count("specialist_opinions") == b.count("specialist_opinions") == 400


def test_plans_have_the_promised_shapes():
    plans = make_plans(2000, seed=9)
    sizes = [len(p["tasks"]) for p in plans]
    assert min(sizes) >= 1 and max(sizes) <= 40 and 17 < sum(sizes) / len(sizes) < 24
    deps = [d for p in plans for t in p["tasks"] for d in t["dependencies"]]
    weak = sum(isinstance(d, dict) and d["type"] == "weak" for d in deps)
    assert 0.08 < weak / len(deps) < 0.2
    missing = sum(t["estimated_duration_ms"] is None for p in plans for t in p["tasks"])
    assert missing > 0


def test_label_noise_is_what_was_asked(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    simulate(store, plans=1500, seed=4, now=NOW, label_noise=0.10, malformed_rate=0.0)
    plans = {p["plan_id"]: p["plan_data"] for p in store.find("cognitive_ledger")}
    plans.update({p["plan_id"]: p for p in store.find("cognitive_plans")})
    agree = Counter()
    for fb in store.find("specialist_feedback", {"specialist_type": "business"}):
        if fb["feedback_id"] != "fb-" + fb["opinion_id"]:
            continue  # machine-written and early labels are random on purpose
        agree[fb["human_recommendation"] == policy_label("business", plans[fb["plan_id"]])] += 1
    rate = agree[False] / (agree[True] + agree[False])
    assert 0.07 < rate < 0.13


def test_answers_due_after_now_are_counted_not_lost_silently(tmp_path):
    """Over one day most answers (0.2-48 h after their opinion) fall after the history's end: `hive simulate
    --days 1 --label-rate 0.85` wrote feedback for 19 % of the opinions and said nothing. The summary counts
    them; written and not yet due together are the asked share of the opinions (binomial bounds, 4 sd)."""
    store = SQLiteStore(tmp_path / "s.sqlite")
    summary = simulate(store, plans=800, days=1, seed=6, now=NOW, feedback_rate=0.85, malformed_rate=0.0,
                       specialists=("business",))
    opinions = store.count("specialist_opinions", {"specialist_type": "business"})
    answered = {fb["opinion_id"] for fb in store.find("specialist_feedback", {"specialist_type": "business"})}
    late = summary.answers_not_yet_due
    assert summary.as_dict()["answers_not_yet_due"] == late
    assert late > len(answered)  # one day: most are not due yet
    share, sd = (len(answered) + late) / opinions, (0.85 * 0.15 / opinions) ** 0.5
    assert abs(share - 0.85) < 4 * sd, (len(answered), late, opinions)


def test_every_policy_is_a_function_of_the_contracted_features():
    """The learning curve's Bayes reference is the noiseless policy; it is the best any model can do only
    if the policy sees nothing the feature contract cannot. Recomputed here from the features alone, with
    the policy's published weights: every plan, every specialist, the same class. Plans with a dependency
    outside the plan are the case that differed (the contract ignores it, so such a task is a root)."""
    import math

    from hive_assets.features import features_frame
    from hive_assets.simulator import POLICIES
    from hive_assets.simulator._simulate import policy_thresholds

    plans = make_plans(3000, seed=21)
    frame = features_frame(plans)
    assert (frame["dangling_dependency_count"] > 0).mean() > 0.3  # the case is well represented
    props = {
        "risk": frame["risk_score"], "complexity": frame["complexity_score"], "priority": frame["priority_score"],
        "size": frame["num_tasks"].map(lambda n: math.log1p(n) / math.log(41.0)),
        "parallel": frame["parallelization_potential"],
        "duration": frame["total_duration_ms"].map(lambda ms: math.log1p(ms / 1000.0) / math.log(3600.0)),
    }
    for specialist, policy in POLICIES.items():
        lo, hi = policy_thresholds(specialist)
        score = sum(w * props[k] for k, w in policy["w"].items()) + frame["domain"].map(
            lambda d: policy["domain"].get(d, 0.0))
        from_features = ["approve" if s < lo else "review_required" if s < hi else "reject" for s in score]
        assert from_features == [policy_label(specialist, p) for p in plans], specialist


def test_the_policies_cut_points_give_the_class_shares_and_the_reference_plans_are_made_once(monkeypatch):
    """Each policy's cut points split the fixed reference population into CLASS_SHARES, counted here with the
    public policy_label on those plans; and the five specialists' cut points are set on one making of the
    population (it was made once per specialist: about 9 s before any `hive simulate` wrote its first plan)."""
    from hive_assets.config import SPECIALISTS
    from hive_assets.simulator import _simulate

    made = []

    def counted(n, seed, *args, **kwargs):
        made.append((n, seed))
        return make_plans(n, seed, *args, **kwargs)

    monkeypatch.setattr(_simulate, "make_plans", counted)
    _simulate._reference_population.cache_clear()
    _simulate.policy_thresholds.cache_clear()
    try:
        cut_points = {s: _simulate.policy_thresholds(s) for s in SPECIALISTS}
    finally:  # the next test computes its own, with the real generator
        _simulate._reference_population.cache_clear()
        _simulate.policy_thresholds.cache_clear()
    assert made == [(_simulate.REFERENCE_PLANS, _simulate.REFERENCE_SEED)]
    reference = make_plans(_simulate.REFERENCE_PLANS, seed=_simulate.REFERENCE_SEED)
    for specialist in SPECIALISTS:
        shares = Counter(policy_label(specialist, p) for p in reference)
        # np.quantile interpolates between two scores: at most one plan either way of each share
        assert abs(shares["approve"] - 0.40 * len(reference)) <= 1, (specialist, shares)
        assert abs(shares["review_required"] - 0.32 * len(reference)) <= 1, (specialist, shares)
        assert _simulate.policy_thresholds(specialist) == cut_points[specialist]


def test_chunked_generation_writes_the_same_documents_with_bounded_batches(tmp_path):
    """Plans are generated, served and written a chunk at a time (memory does not grow with --plans): a
    chunk of 7 writes exactly what one chunk of all the plans writes, and the opinion model never sees
    more than a chunk."""
    def opinions(specialist: str, plans: list[dict]):
        seen[specialist].append(len(plans))
        # a function of the plan only, as a served model is
        return [(policy_label(specialist, p), round(p["risk_score"], 4), "9", {"n_tasks": len(p["tasks"])})
                for p in plans]

    stores = {}
    for chunk in (7, 10_000):
        seen = {s: [] for s in ("business", "technical", "behavior", "evolution", "architecture")}
        stores[chunk] = SQLiteStore(tmp_path / f"{chunk}.sqlite")
        summary = simulate(stores[chunk], plans=100, seed=6, now=NOW, opinion_model=opinions, chunk_size=chunk)
        assert all(sizes == ([7] * 14 + [2] if chunk == 7 else [100]) for sizes in seen.values()), seen
        assert summary.plan_docs == []  # not kept unless asked: that is what bounds the memory
    for coll in ("cognitive_ledger", "cognitive_plans", "specialist_opinions", "specialist_feedback",
                 "intentions_audit"):
        assert list(stores[7].find(coll)) == list(stores[10_000].find(coll)), coll
    served = list(stores[7].find("specialist_opinions", {"specialist_type": "behavior"}))
    assert served and all(o["specialist_version"] == "9" for o in served)

    kept = simulate(SQLiteStore(tmp_path / "kept.sqlite"), plans=30, seed=6, now=NOW, chunk_size=4,
                    keep_plans=True)
    assert kept.plan_docs == make_plans(30, seed=6, now=NOW, days=60.0)


def test_the_loop_plays_whole_hours_and_says_so():
    import pytest

    from hive_assets.simulator import default_scenario

    assert default_scenario(days=6).describe()[0].startswith("6 simulated days, 150 plans an hour")
    assert default_scenario(days=0.25).describe()[0].startswith("0.25 simulated days, ")  # 6 h: nothing rounded
    tenth = default_scenario(days=0.1)
    assert tenth.hours == 2 and tenth.describe()[0].startswith("0.1 simulated days (2 h: the loop plays whole hours)")
    for under_an_hour in (0.01, 0.03, 0.04):  # 0.01 played nothing; 0.03 (0.72 h) was played as an hour
        with pytest.raises(ValueError, match="days must be at least 1/24"):
            default_scenario(days=under_an_hour)
    assert default_scenario(days=1 / 24).hours == 1 and default_scenario(days=0.05).hours == 1


def test_the_heuristic_baseline_leaves_out_a_test_row_whose_plan_is_now_malformed(tmp_path):
    """`hive loop`'s closing table scores the pre-platform heuristic on a run's test rows. A second `hive
    simulate` with the seed replaced one of their plans by a malformed one, and the table ended the loop in a
    KeyError traceback after the days had played; that row is now left out."""
    import json

    from hive_assets import registry
    from hive_assets.simulator._simulate import heuristic_opinion
    from hive_assets.simulator._timeline import TEST_ROWS_ARTIFACT, heuristic_baseline

    plans = make_plans(6, seed=3)
    store = SQLiteStore(tmp_path / "store.sqlite")
    broken = {k: v for k, v in plans[0].items() if k != "tasks"}  # collection would quarantine it: missing_tasks
    store.upsert_many("cognitive_plans", [broken, *plans[1:]])
    labels = ["approve", "reject", "approve", "review_required", "approve", "reject"]
    client = registry.client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = registry.ensure_experiment(client, "t", (tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment)
    (tmp_path / TEST_ROWS_ARTIFACT).write_text(json.dumps({"plan_id": [p["plan_id"] for p in plans], "label": labels}))
    client.log_artifact(run.info.run_id, str(tmp_path / TEST_ROWS_ARTIFACT))

    accuracy, rows = heuristic_baseline(store, client, "business", run.info.run_id)
    hits = [heuristic_opinion("business", p)[0] == label for p, label in zip(plans[1:], labels[1:])]
    assert rows == 5 and accuracy == sum(hits) / 5


def test_the_audit_events_also_go_where_collection_reads_them(tmp_path):
    """With Kafka configured, collection reads the topic, not the intentions_audit collection: the simulator gives
    its audit events to the sink too (the topic), batch by batch, the same events the store holds."""
    store = SQLiteStore(tmp_path / "s.sqlite")
    batches: list[list[dict]] = []
    summary = simulate(store, plans=300, days=5, seed=4, now=datetime(2026, 5, 1, tzinfo=timezone.utc),
                       batch_size=100, audit_sink=lambda events: batches.append([dict(e) for e in events]))
    sent = [event for batch in batches for event in batch]
    assert len(batches) > 1 and all(len(batch) <= 100 for batch in batches)
    stored = {doc["id"]: doc for doc in store.find("intentions_audit")}
    assert len(sent) == len(stored) == summary.written["intentions_audit"] > 250
    for event in sent:  # the store gives its dates back as ISO text
        kept = {k: v for k, v in stored[event["id"]].items() if k != "_id"}
        assert to_utc(kept.pop("timestamp")) == to_utc(event.pop("timestamp")) and kept == event


class _InterruptedAt:
    """The store, whose `at`-th write is a Ctrl-C (where a user's lands: between two batches)."""

    def __init__(self, store, at: int):
        self._store, self.at, self.writes = store, at, 0

    def upsert_many(self, collection, docs):
        self.writes += 1
        if self.writes == self.at:
            raise KeyboardInterrupt
        return self._store.upsert_many(collection, docs)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_an_interrupted_simulation_leaves_no_opinion_without_its_plan(tmp_path):
    """Opinions (five a plan) filled their batch first and were written before their plans: `hive simulate`
    interrupted after 22 s left 24,000 opinions and no plan. Every batch now writes plans first."""
    import pytest

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for at in (5, 8, 10):  # writes after the first batch of opinions (interrupted earlier, there are none to check)
        store = SQLiteStore(tmp_path / f"store-{at}.sqlite")
        with pytest.raises(KeyboardInterrupt):
            simulate(_InterruptedAt(store, at), plans=600, seed=3, now=now, batch_size=200)
        plans = {d["plan_id"] for coll in ("cognitive_plans", "cognitive_ledger") for d in store.find(coll)}
        opinions = list(store.find("specialist_opinions"))
        assert opinions and {o["plan_id"] for o in opinions} <= plans, at
