"""The `quarantine` collection says, per specialist, what that specialist's latest collection quarantined."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from hive_assets.data import SQLiteStore, collect, persist_quarantine
from hive_assets.simulator import simulate

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
SPECIALISTS = ("business", "technical")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    store = SQLiteStore(tmp_path_factory.mktemp("quarantine") / "store.sqlite")
    simulate(store, plans=300, days=30, seed=5, now=NOW, malformed_rate=0.05)
    return store


def entries(store, specialist, status="quarantined") -> set[tuple[str, str, str]]:
    return {(q["source_collection"], q["source_id"], q["reason"])
            for q in store.find("quarantine", {"specialist_type": specialist, "status": status})}


def quarantined(result) -> set[tuple[str, str, str]]:
    q = result.quarantine
    return set(zip(q["source_collection"], q["source_id"], q["reason"]))


def test_each_specialist_keeps_what_its_latest_collection_quarantined(simulated, tmp_path):
    store = SQLiteStore(tmp_path / "copy.sqlite")  # the module's store stays as simulated
    for collection in ("cognitive_ledger", "specialist_opinions", "specialist_feedback", "intentions_audit"):
        store.upsert_many(collection, simulated.find(collection))
    results = {s: collect(store, s, now=NOW) for s in SPECIALISTS}
    for s in SPECIALISTS:
        persist_quarantine(store, results[s], f"run-{s}-1")
    shared = {i for i in quarantined(results["business"]) & quarantined(results["technical"])
              if i[0] == "cognitive_ledger"}
    assert shared  # plans both specialists read: each keeps its own entry (one overwrote the other)
    for s in SPECIALISTS:
        assert entries(store, s) == quarantined(results[s])
    assert store.count("quarantine") == sum(len(quarantined(r)) for r in results.values())

    # the operator removes a malformed plan: business's next collection no longer quarantines it (its opinions
    # stay quarantined, now as `invalid_plan` "not found"), technical has not collected since
    plan_id = sorted(shared)[0][1]
    assert store.delete_many("cognitive_ledger", {"plan_id": plan_id}) == 1
    again = collect(store, "business", now=NOW)
    persist_quarantine(store, again, "run-business-2")
    assert entries(store, "business") == quarantined(again)
    released = store.find_one("quarantine", {"specialist_type": "business", "source_id": plan_id,
                                             "source_collection": "cognitive_ledger"})
    assert (released["status"], released["run_id"], released["released_by_run_id"]) == (
        "released", "run-business-1", "run-business-2")
    assert entries(store, "business", "released") == quarantined(results["business"]) - quarantined(again)
    assert entries(store, "technical") == quarantined(results["technical"])  # untouched
    assert {q["run_id"] for q in store.find("quarantine", {"specialist_type": "technical"})} == {"run-technical-1"}

    # idempotent: the same collection again writes the same entries and releases nothing more
    before = sorted((q["quarantine_id"], q["status"]) for q in store.find("quarantine"))
    persist_quarantine(store, again, "run-business-3")
    assert sorted((q["quarantine_id"], q["status"]) for q in store.find("quarantine")) == before

    # quarantined again after a release: open again, with the run that quarantined it
    persist_quarantine(store, results["business"], "run-business-4")
    assert entries(store, "business") == quarantined(results["business"])
    reopened = store.find_one("quarantine", {"specialist_type": "business", "source_id": plan_id,
                                             "source_collection": "cognitive_ledger"})
    assert (reopened["status"], reopened["run_id"], reopened.get("released_by_run_id")) == (
        "quarantined", "run-business-4", None)


def test_entries_from_before_the_specialist_was_in_the_id_are_replaced(simulated, tmp_path):
    store = SQLiteStore(tmp_path / "old.sqlite")
    result = collect(simulated, "business", now=NOW)
    row = result.quarantine.iloc[0].to_dict()
    legacy = {**row, "quarantine_id": f"{row['source_collection']}:{row['source_id']}:{row['reason']}",
              "run_id": "old-run"}
    store.upsert_many("quarantine", [legacy, {**legacy, "quarantine_id": "x:y:z", "specialist_type": "technical"}])
    persist_quarantine(store, result, "run-1")
    assert entries(store, "business") == quarantined(result)
    assert store.count("quarantine", {"specialist_type": "business"}) == len(quarantined(result))
    assert store.count("quarantine", {"specialist_type": "technical"}) == 1  # another specialist's: its next run
