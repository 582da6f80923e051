from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from hive_assets.simulator import make_plans, policy_label, simulate
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
