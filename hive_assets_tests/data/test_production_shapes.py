"""Documents as production writes them (issue 8): encrypted intent ids, approval-service feedback, large
quarantined documents, non-finite numbers, backfills with `as_of`."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from hive_assets.config import CLASSES
from hive_assets.data import FeedbackFilterEmptiedClass, TrustPolicy, collect, persist_quarantine
from hive_assets.data import _documents as d
from hive_assets.data.store import SQLiteStore
from hive_assets.data.store.importer import import_jsonl
from hive_assets_tests.data.production_corpus import write_production_corpus

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.fixture
def corpus_store(tmp_path):
    store = SQLiteStore(tmp_path / "store.sqlite")
    return store, write_production_corpus(store, NOW)


# -- the production corpus ----------------------------------------------------------------------------
def test_the_production_corpus_collects_every_opinion_labelled_and_nothing_quarantined(corpus_store):
    store, corpus = corpus_store
    assert corpus.encrypted_intent > 30 and corpus.missing_intent and corpus.conditional and corpus.null_durations
    assert corpus.lowercase_domains and corpus.approval_service["reject"] and corpus.approval_service["approve"]
    result = collect(store, "business", now=NOW, trust=TrustPolicy(min_feedback_quality=0.5))
    assert len(result.quarantine) == 0, result.quarantine[["source_id", "reason", "detail"]].to_dict("records")
    assert result.counts["rows"] == result.counts["labelled"] == corpus.opinions
    assert Counter(result.frame["label"]) == corpus.labels  # every rejection kept, approval-service ones included
    assert result.counts["intent_from_plan"] == corpus.encrypted_intent + corpus.missing_intent
    assert result.counts["intent_from_opinion"] == corpus.clear_intent
    assert result.counts["filtered_no_audit_event"] == 0
    # the rows carry the clear intent id (the plan's), never a token
    assert not result.frame["intent_id"].str.startswith("enc:").any()
    intent_of_plan = {p["plan_id"]: p["intent_id"] for p in _plans(store)}
    assert dict(zip(result.frame["plan_id"], result.frame["intent_id"])) == intent_of_plan
    assert result.counts["quality_filter_dropped_by_class"] == {c: 0 for c in CLASSES}


# -- item 2: encrypted intent ids -----------------------------------------------------------------------
def test_an_encrypted_intent_id_resolves_through_the_plan_and_an_unresolvable_one_is_counted(corpus_store):
    store, corpus = corpus_store
    # a plan whose intent is encrypted too (and no clear copy on the ledger document): nothing to join on
    ledger = next(doc for doc in store.find("cognitive_ledger") if "intent_id" not in doc["plan_data"])
    ledger["intent_id"] = "enc:gAAAAABm-unreadable"
    store.upsert_many("cognitive_ledger", [ledger])
    result = collect(store, "business", now=NOW)
    lost = {op["opinion_id"] for op in store.find("specialist_opinions", {"plan_id": ledger["plan_id"]})}
    assert result.counts["filtered_no_intent_id"] == len(lost) == 1
    assert set(result.frame["opinion_id"]).isdisjoint(lost)
    assert result.counts["rows"] == corpus.opinions - 1
    assert result.counts["intent_from_plan"] + result.counts["intent_from_opinion"] == corpus.opinions - 1


# -- item 3: approval-service feedback ----------------------------------------------------------------------
@pytest.mark.parametrize("fb, exempt", [
    ({"feedback_source": "approval_service"}, True),
    ({"feedback_source": "Approval_Service"}, True),
    ({"feedback_source": "human_expert", "metadata": {"source": "APPROVAL_SERVICE"}}, True),
    ({"feedback_source": "human_expert", "metadata": {"source": "triage_bot"}}, False),
    ({"feedback_source": "human_expert", "metadata": {}}, False),
    ({"feedback_source": None, "metadata": None}, False),
])
def test_the_approval_service_is_recognised_by_either_field_in_any_case(fb, exempt):
    policy = TrustPolicy(min_feedback_quality=0.5)
    assert policy.is_quality_exempt(fb) is exempt
    assert policy.reason_to_drop({**fb, "human_rating": 0.0}) == (None if exempt else "below_min_quality")
    # the exemption list itself is case-insensitive too
    assert TrustPolicy(quality_exempt_sources=frozenset({"TRIAGE_BOT"})).is_quality_exempt(
        {"metadata": {"source": "triage_bot"}})


def test_the_quality_filter_reports_per_class_and_fails_naming_the_class_it_empties(corpus_store):
    store, corpus = corpus_store
    # exempting nothing, 0.5 removes the approval service's 0.0 rejections but human ones stay
    result = collect(store, "business", now=NOW,
                     trust=TrustPolicy(min_feedback_quality=0.5, quality_exempt_sources=frozenset()))
    expected = {c: 0 for c in CLASSES} | {"reject": corpus.approval_service["reject"]}
    assert result.counts["quality_filter_dropped_by_class"] == expected
    assert result.counts["feedback_dropped"]["below_min_quality"] == corpus.approval_service["reject"]
    assert Counter(result.frame["label"].dropna())["reject"] == corpus.labels["reject"] - corpus.approval_service["reject"]
    # a threshold above every human rejection's rating empties the class: an error naming it
    human_reject_ratings = [fb["human_rating"] for fb in store.find("specialist_feedback", {"human_recommendation": "reject"})
                            if fb["metadata"].get("source") is None]
    assert human_reject_ratings
    with pytest.raises(FeedbackFilterEmptiedClass, match="'reject'") as info:
        collect(store, "business", now=NOW, trust=TrustPolicy(
            min_feedback_quality=max(human_reject_ratings) + 1e-9, quality_exempt_sources=frozenset()))
    assert info.value.label == "reject" and info.value.dropped == corpus.labels["reject"]


# -- item 4: quarantine of large documents -------------------------------------------------------------------
def test_a_quarantined_document_of_any_size_is_kept_and_never_fails_persisting(corpus_store):
    store, _ = corpus_store
    big = next(iter(store.find("cognitive_ledger")))
    big["plan_data"]["tasks"] = [{"task_id": f"x{k}", "dependencies": [], "description": "d" * 40}
                                 for k in range(d.MAX_TASKS + 1)]  # oversized_plan, ~350 kB of JSON
    huge = next(doc for doc in store.find("cognitive_ledger") if doc["plan_id"] != big["plan_id"])
    huge["plan_data"]["risk_score"] = 3.0  # out_of_range, and 1.5 MB of reasoning text beside it
    huge["plan_data"]["notes"] = "n" * 1_500_000
    store.upsert_many("cognitive_ledger", [big, huge])
    result = collect(store, "business", now=NOW)
    assert set(result.quarantined_by_reason) >= {"oversized_plan", "out_of_range"}
    assert persist_quarantine(store, result, "run-1") == len(result.quarantine)
    kept = {q["source_id"]: q for q in store.find("quarantine", {"source_collection": "cognitive_ledger"})}
    whole = kept[big["plan_id"]]["document"]  # kept whole: every task, as written
    assert whole["plan_data"]["tasks"] == big["plan_data"]["tasks"] and whole["hash"] == big["hash"]
    summary = kept[huge["plan_id"]]["document"]
    assert summary["oversized_document"] is True and summary["chars"] > 1_500_000
    assert len(summary["preview"]) <= 2_000 and "plan_data" in summary["top_level_fields"]
    assert kept[huge["plan_id"]]["document_sha256"] == summary["sha256"]
    # idempotent: a second run replaces, never duplicates
    persist_quarantine(store, result, "run-2")
    assert store.count("quarantine", {"specialist_type": "business"}) == len(result.quarantine)


# -- item 5: non-finite numbers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_out_of_range_not_wrong_type(text):
    value = float(text.replace("Infinity", "inf"))
    opinion = {"opinion_id": "o", "plan_id": "p", "evaluated_at": NOW, "specialist_type": "business",
               "opinion": {"recommendation": "approve", "confidence_score": 0.5, "risk_score": 0.5}}
    for field in ("confidence_score", "risk_score"):
        doc = {**opinion, "opinion": {**opinion["opinion"], field: value}}
        assert [p.reason for p in d.validate_opinion(doc, NOW, "business")] == [d.OUT_OF_RANGE], field
    plan = {"plan_id": "p", "tasks": [{"task_id": "a", "estimated_duration_ms": 5}], "risk_score": 0.5}
    for mutate in (lambda p: p.update(risk_score=value), lambda p: p.update(complexity_score=value),
                   lambda p: p.update(estimated_total_duration_ms=value),
                   lambda p: p["tasks"][0].update(estimated_duration_ms=value)):
        doc = json.loads(json.dumps(plan))
        mutate(doc)
        assert [p.reason for p in d.validate_plan(doc, NOW)] == [d.OUT_OF_RANGE], doc


def test_extended_json_nan_and_infinity_survive_import_and_are_quarantined_out_of_range(corpus_store, tmp_path):
    store, corpus = corpus_store
    opinions = sorted(store.find("specialist_opinions"), key=lambda op: op["opinion_id"])[:3]
    ledger = sorted(store.find("cognitive_ledger"), key=lambda doc: doc["plan_id"])
    ledger = [doc for doc in ledger if doc["plan_id"] not in {op["plan_id"] for op in opinions}][:2]
    lines = []
    for op, (field, text) in zip(opinions, [("confidence_score", "NaN"), ("risk_score", "Infinity"),
                                           ("confidence_score", "-Infinity")]):
        body = {**op["opinion"], field: {"$numberDouble": text}}
        lines.append(json.dumps({**op, "evaluated_at": {"$date": op["evaluated_at"]}, "opinion": body}))
    path = tmp_path / "opinions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert import_jsonl(store, "specialist_opinions", path)["written"] == 3
    plan_lines = []
    for doc, field in zip(ledger, ["risk_score", "complexity_score"]):
        plan_lines.append(json.dumps({**doc, "timestamp": {"$date": doc["timestamp"]},
                                      "plan_data": {**doc["plan_data"], "created_at": {"$date": doc["plan_data"]["created_at"]},
                                                    field: {"$numberDouble": "NaN"}}}))
    (tmp_path / "ledger.jsonl").write_text("\n".join(plan_lines) + "\n")
    assert import_jsonl(store, "cognitive_ledger", tmp_path / "ledger.jsonl")["written"] == 2
    stored = store.find_one("specialist_opinions", {"opinion_id": opinions[0]["opinion_id"]})
    assert math.isnan(stored["opinion"]["confidence_score"])  # not null: the store keeps what was imported
    result = collect(store, "business", now=NOW)
    got = {(q.source_collection, q.source_id): q.reason for q in result.quarantine.itertuples()}
    expected = {("specialist_opinions", op["opinion_id"]): "out_of_range" for op in opinions}
    expected |= {("cognitive_ledger", doc["plan_id"]): "out_of_range" for doc in ledger}
    expected |= {("specialist_opinions", op["opinion_id"]): "invalid_plan"
                 for doc in ledger for op in store.find("specialist_opinions", {"plan_id": doc["plan_id"]})}
    assert got == expected
    assert persist_quarantine(store, result) == len(expected)  # NaN inside a kept document writes fine
    assert result.counts["rows"] == corpus.opinions - len(opinions) - len(ledger)


# -- item 7: backfills with as_of ------------------------------------------------------------------------------------
def test_a_backfill_sees_the_data_as_it_was_at_as_of(corpus_store):
    store, corpus = corpus_store
    as_of = NOW - timedelta(days=6)
    opinions = list(store.find("specialist_opinions"))
    before = [op for op in opinions if d.to_utc(op["evaluated_at"]) <= as_of]
    assert 0 < len(before) < len(opinions)
    feedback = {fb["opinion_id"]: fb for fb in store.find("specialist_feedback")}
    # one opinion right before as_of whose human label came only after it
    late = max(before, key=lambda op: op["evaluated_at"])
    feedback[late["opinion_id"]]["submitted_at"] = as_of + timedelta(hours=1)
    store.upsert_many("specialist_feedback", [feedback[late["opinion_id"]]])
    # and an intent whose audit event was written after as_of (its opinion cannot be trusted at as_of)
    unaudited = sorted(before, key=lambda op: op["evaluated_at"])[0]
    plan_intent = next(op for op in store.find("intentions_audit")
                       if op["id"] == next(p for p in _plans(store) if p["plan_id"] == unaudited["plan_id"])["intent_id"])
    plan_intent["timestamp"] = int((as_of + timedelta(minutes=1)).timestamp() * 1000)
    store.upsert_many("intentions_audit", [plan_intent])

    # the window source: every opinion up to as_of, the late one without a label
    result = collect(store, "business", now=as_of.replace(tzinfo=None), source="window")  # naive means UTC
    assert result.counts["window_end"] == as_of.isoformat()
    assert len(result.quarantine) == 0  # nothing after as_of is "in the future"
    assert set(result.frame["opinion_id"]) == {op["opinion_id"] for op in before} - {unaudited["opinion_id"]}
    assert result.counts["filtered_no_audit_event"] == 1
    assert pd.isna(result.frame.set_index("opinion_id").loc[late["opinion_id"], "label"])
    assert result.frame["label"].notna().sum() == len(before) - 2
    assert result.counts["feedback_dropped"] == {"submitted_after_window": 1}
    assert (result.frame["feedback_submitted_at"].dropna() <= as_of).all()
    # training's label-driven source: the same labelled rows; the late opinion had no label at as_of
    labelled = collect(store, "business", now=as_of)
    assert set(labelled.frame["opinion_id"]) == {op["opinion_id"] for op in before} - {unaudited["opinion_id"],
                                                                                    late["opinion_id"]}
    assert labelled.snapshot_hash() == result.snapshot_hash() and len(labelled.quarantine) == 0
    assert (labelled.frame["feedback_submitted_at"] <= as_of).all()


def _plans(store):
    for doc in store.find("cognitive_ledger"):
        yield {"intent_id": doc["intent_id"], "plan_id": doc["plan_id"]}
    for doc in store.find("cognitive_plans"):
        yield doc
