"""raw_production_data on production-shaped documents: run config of the quality filter, its failure,
a naive `as_of`, large quarantined documents; and `hive collect`'s flags for the same filter."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import dagster as dg

from hive_assets.cli._dagster import failure_message
from hive_assets.config import CLASSES
from hive_assets.data import _documents as d
from hive_assets.data.store import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets_tests.data.production_corpus import write_production_corpus

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def _collect(config: dict) -> dg.ExecuteInProcessResult:
    defs = build_defs()
    return dg.materialize(
        list(defs.assets), selection=["raw_production_data"], partition_key="business",
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
        resources={"document_store": DocumentStoreResource(), "mlflow": MlflowResource(), "platform": PlatformSettings()},
        run_config={"ops": {"raw_production_data": {"config": {"min_samples": 10, **config}}}},
    )


def _metadata(result) -> dict:
    (mat,) = result.asset_materializations_for_node("raw_production_data")
    return {k: v.value for k, v in mat.metadata.items()}


def test_the_quality_filter_is_run_config_reports_per_class_and_an_emptied_class_fails_the_run(hive_home):
    store = SQLiteStore(hive_home / "store.sqlite")
    corpus = write_production_corpus(store, NOW)
    kept = _collect({"as_of": NOW.isoformat(), "min_feedback_quality": 0.5})
    assert kept.success
    meta = _metadata(kept)
    assert meta["labelled"] == corpus.opinions and meta["quarantined_total"] == 0
    assert meta["label_counts"] == dict(corpus.labels)
    assert meta["intent_from_plan"] == corpus.encrypted_intent + corpus.missing_intent
    assert meta["quality_filter_dropped_by_class"] == {"approve": 0, "reject": 0, "review_required": 0}

    # without the exemption, 0.0-rated approval-service rejections go; above every human rating, all go
    dropped = _collect({"as_of": NOW.isoformat(), "min_feedback_quality": 0.5, "quality_exempt_sources": []})
    assert _metadata(dropped)["quality_filter_dropped_by_class"]["reject"] == corpus.approval_service["reject"]
    emptied = _collect({"as_of": NOW.isoformat(), "min_feedback_quality": 1.0, "quality_exempt_sources": ["nobody"]})
    assert not emptied.success
    failure = next(e for e in emptied.all_events if e.event_type_value == "STEP_FAILURE")
    # approval-service approvals (1.0) survive; every human rating is below 1.0, so the first class left
    # without a label, in CLASSES order, is named
    first_emptied = next(c for c in CLASSES if c != "approve")
    assert f"removed every {first_emptied!r} label" in failure.step_failure_data.error.message
    assert not [e for e in emptied.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]  # config error: no retry


def test_an_as_of_after_the_platform_clock_fails_the_run_and_materializes_nothing(hive_home, monkeypatch):
    # a simulated home pinned 3 days after the corpus: as_of one day later is data that does not exist yet
    # (it replaced the partition's output by a collection missing the days to come)
    store = SQLiteStore(hive_home / "store.sqlite")
    write_production_corpus(store, NOW)
    pinned = NOW + timedelta(days=3)
    monkeypatch.setenv("HIVE_SIMULATED_NOW", pinned.isoformat())
    later = _collect({"as_of": (pinned + timedelta(days=1)).isoformat()})
    assert not later.success
    assert not later.asset_materializations_for_node("raw_production_data")
    failure = next(e for e in later.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message
    assert "is after the platform clock" in message and pinned.isoformat() in message
    assert not [e for e in later.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    # within the skew, and at the clock itself, the run collects (another host's clock may be ahead)
    assert _collect({"as_of": (pinned + timedelta(minutes=4)).isoformat()}).success
    assert _metadata(_collect({"as_of": pinned.isoformat()}))["labelled"] > 0


def test_a_naive_as_of_is_utc_and_a_large_quarantined_plan_never_fails_the_run(hive_home, monkeypatch):
    monkeypatch.setenv("TZ", "America/Sao_Paulo")  # a local zone must not shift a naive as_of
    import time

    time.tzset()
    try:
        store = SQLiteStore(hive_home / "store.sqlite")
        write_production_corpus(store, NOW)
        doc = next(iter(store.find("cognitive_ledger")))
        doc["plan_data"]["tasks"] = [{"task_id": f"x{k}", "description": "d" * 40} for k in range(d.MAX_TASKS + 1)]
        store.upsert_many("cognitive_ledger", [doc])
        as_of = NOW - timedelta(days=3)
        result = _collect({"as_of": as_of.replace(tzinfo=None).isoformat()})
        assert result.success
        meta = _metadata(result)
        assert meta["window"].endswith(as_of.isoformat())
        assert meta["quarantined_by_reason"]["oversized_plan"] == 1
        kept = store.find_one("quarantine", {"reason": "oversized_plan"})
        assert len(kept["document"]["plan_data"]["tasks"]) == d.MAX_TASKS + 1
    finally:
        monkeypatch.undo()
        time.tzset()


def test_hive_collect_takes_the_quality_filter_and_its_exemptions(hive_home, capsys):
    from hive_assets.cli._main import main

    store = SQLiteStore(hive_home / "store.sqlite")
    corpus = write_production_corpus(store, datetime.now(timezone.utc))
    argv = ["collect", "--specialist", "business", "--min-samples", "10", "--json", "--min-feedback-quality", "0.5"]
    assert main(argv + ["--quality-exempt-source", "triage_bot", "--quality-exempt-source", "Approval_Service"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["labelled"] == corpus.opinions
    assert record["quality_filter_dropped_by_class"]["reject"] == 0
    assert main(argv + ["--quality-exempt-source", "triage_bot"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["quality_filter_dropped_by_class"]["reject"] == corpus.approval_service["reject"]
    assert record["labelled"] == corpus.opinions - corpus.approval_service["reject"]


def test_run_config_out_of_its_range_fails_before_anything_is_read_or_written(hive_home):
    store = SQLiteStore(hive_home / "store.sqlite")
    write_production_corpus(store, NOW)
    # a negative window collected 0 rows and succeeded; 0 days meant the default 90; min_confidence 2 filtered all
    for config, bound in (({"window_days": -5}, "greater than or equal to 1"),
                          ({"window_days": 0}, "greater than or equal to 1"),
                          ({"window_days": 36_501}, "less than or equal to 36500"),
                          ({"min_confidence": 2.0}, "less than or equal to 1"),
                          ({"min_feedback_quality": -0.1}, "greater than or equal to 0")):
        result = _collect({"as_of": NOW.isoformat(), **config})
        # refused when the run's first step sets up (`run config out of range: ...`), before it reads anything
        assert not result.success and bound in failure_message(result), config
        assert not result.asset_materializations_for_node("raw_production_data")
    widest = _collect({"as_of": NOW.isoformat(), "window_days": 36_500, "min_samples": 10**6})
    assert widest.success
    (check,) = [e.asset_check_evaluation_data for e in widest.all_events
                if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    rows = _metadata(widest)["rows"]
    assert not check.passed and check.description == (f"business: {rows} rows < min_samples 1000000 (a warning; "
                                                       "what blocks training is enhanced_features' trainable check)")
    assert check.metadata["specialist"].value == "business"  # checks are not partitioned: each result says whose


def test_mistyped_documents_are_quarantined_and_the_run_succeeds_without_a_retry(hive_home):
    """An opinion whose `metadata` is text failed the step (AttributeError) and its two retries; a numeric
    `feedback_id` (`{"$numberLong": "778"}`, as `hive store import` reads it) failed the write of the rows."""
    from hive_assets_tests.data.production_corpus import write_edge_cases

    store = SQLiteStore(hive_home / "store.sqlite")
    corpus = write_production_corpus(store, NOW)
    cases = write_edge_cases(store, NOW, NOW - timedelta(days=90))
    result = _collect({"as_of": NOW.isoformat()})
    assert result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    meta = _metadata(result)
    assert meta["quarantined_by_reason"] == {"wrong_type": len(cases.quarantined)}
    # every opinion of the corpus, and the edge cases' opinions that stay rows
    assert meta["labelled"] == corpus.opinions + len(cases.rows)


def test_the_collection_steps_say_what_their_counts_count(tmp_path):
    """`opinions_read` counts the opinions with trusted feedback (it said every opinion of the window);
    `feedback_dropped` counts by the reasons it names (it said superseded labels too, never counted)."""
    from hive_assets.data import TrustPolicy, collect
    from hive_assets.defs.data.assets import COLLECTION_STEPS
    from hive_assets.simulator import simulate

    store = SQLiteStore(tmp_path / "store.sqlite")
    simulate(store, plans=200, days=20, seed=5, now=NOW, malformed_rate=0.0, ledger_share=1.0)
    window = collect(store, "business", now=NOW, min_confidence=0.0, source="window")
    oid = window.frame[window.frame["label"].notna()]["opinion_id"].iloc[0]
    fb = store.find_one("specialist_feedback", {"opinion_id": oid})
    extra = {"auto_generated": {"metadata": {"auto_generated": True}},
             "balanced_dataset": {"metadata": {"balanced_dataset": True}},
             "denied_source": {"feedback_source": "load_test"}, "below_min_quality": {"human_rating": 0.1},
             "submitted_after_window": {"submitted_at": NOW + timedelta(days=1)},
             "superseded": {"submitted_at": d.to_utc(fb["submitted_at"]) - timedelta(minutes=1)}}
    store.upsert_many("specialist_feedback", [{**fb, "feedback_id": f"fb-{reason}", **fields}
                                              for reason, fields in extra.items()])
    result = collect(store, "business", now=NOW, min_confidence=0.0, trust=TrustPolicy(min_feedback_quality=0.5))
    meaning = dict(COLLECTION_STEPS)
    named = {reason for reason in extra if reason in meaning["feedback_dropped"]}
    dropped = set(result.counts["feedback_dropped"])
    assert dropped == named == set(extra) - {"superseded"}
    # counted here from every document: opinions of the window with a trusted label known at NOW
    start, trust = NOW - timedelta(days=90), TrustPolicy()
    trusted = {fb["opinion_id"] for fb in store.find("specialist_feedback", {"specialist_type": "business"})
               if d.to_utc(fb["submitted_at"]) <= NOW and trust.reason_to_drop(fb) is None}
    in_window = {op["opinion_id"] for op in store.find("specialist_opinions", {"specialist_type": "business"})
                 if start <= d.to_utc(op["evaluated_at"]) <= NOW}
    assert result.counts["opinions_read"] == len(trusted & in_window) < window.counts["opinions_read"]
    assert "with trusted feedback" in meaning["opinions_read"]
