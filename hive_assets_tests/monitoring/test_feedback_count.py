"""The feedback sensor's count (hive_assets.monitoring.trusted_feedback_count) against the policy itself:
every document judged one by one by `TrustPolicy.reason_to_drop`, on both stores."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from hive_assets.data import SQLiteStore, TrustPolicy
from hive_assets.monitoring import trusted_feedback_count
from hive_assets_tests.data.store import any_store  # noqa: F401  (fixture)

NOW = datetime(2026, 5, 1, tzinfo=timezone.utc)
FLAG_VALUES = [None, True, False, 1, 0, "yes", "", "missing"]  # "missing": key absent
SOURCES = ["human_expert", "approval_service", "synthetic_backfill", "load_test", None, "Approval_Service",
           " Load_Test ", "SYNTHETIC_BACKFILL", 7]
# metadata.source: the approval service marks itself only there; any spelling, or another type
META_SOURCES = ["approval_service", "APPROVAL_SERVICE", "ui", "missing", "Load_Test", " synthetic_backfill", 3,
                {"name": "load_test"}, "[load_test]"]


def corpus(seed: int = 3) -> list[dict]:
    """Every combination of the trust fields' edge values, for two specialists, at spread times."""
    rng = np.random.default_rng(seed)
    docs = []
    for i, (auto, balanced, source, specialist) in enumerate(
            itertools.product(FLAG_VALUES, FLAG_VALUES, SOURCES, ("business", "technical"))):
        meta = {}
        for name, value in (("auto_generated", auto), ("balanced_dataset", balanced)):
            if value != "missing":
                meta[name] = value
        meta_source = META_SOURCES[int(rng.integers(len(META_SOURCES)))]
        if meta_source != "missing":
            meta["source"] = meta_source
        rating = rng.choice([None, 0.0, 0.3, 0.8, 1.0])
        doc = {"feedback_id": f"fb-{i}", "opinion_id": f"op-{i}", "specialist_type": specialist,
               "human_recommendation": "approve", "submitted_at": NOW - timedelta(hours=float(rng.uniform(0, 200))),
               "metadata": meta if rng.random() > 0.05 else None}
        if rating is not None:
            doc["human_rating"] = float(rating)
        if source is not None:
            doc["feedback_source"] = source
        docs.append(doc)
    for i, bad in enumerate(["yesterday-ish", 1_700_000_000, None, "9999-01-01T00:00:00.000000Z"]):
        docs.append({"feedback_id": f"fb-bad-{i}", "specialist_type": "business", "submitted_at": bad,
                     "feedback_source": "human_expert", "metadata": {}})
    docs.append({"feedback_id": "fb-future", "specialist_type": "business", "feedback_source": "human_expert",
                 "submitted_at": datetime.now(timezone.utc) + timedelta(days=1)})
    return docs


def by_policy(docs, specialist, since, policy, until=None) -> int:
    """The reference: each document's verdict from the policy, one at a time; only real timestamps count."""
    until = until or datetime.now(timezone.utc) + timedelta(minutes=5)
    return sum(1 for d in docs if d["specialist_type"] == specialist and isinstance(d["submitted_at"], datetime)
               and (since is None or d["submitted_at"] > since) and d["submitted_at"] <= until
               and policy.reason_to_drop(d) is None)


POLICIES = [TrustPolicy(), TrustPolicy(min_feedback_quality=0.5),
            TrustPolicy(denied_sources=frozenset({"load_test"}), min_feedback_quality=0.9),
            TrustPolicy(denied_sources=frozenset()),
            # the approval service, denied: it is named only in metadata.source
            TrustPolicy(denied_sources=frozenset({"Approval_Service ", "load_test"}))]


@pytest.mark.parametrize("policy", POLICIES, ids=["default", "quality", "one-denied-high-quality", "none-denied",
                                                  "approval-service-denied"])
def test_count_equals_the_policy_one_document_at_a_time(any_store, policy):  # noqa: F811
    docs = corpus()
    any_store.upsert_many("specialist_feedback", docs)
    for specialist, since in itertools.product(("business", "technical", "behavior"),
                                               (None, NOW - timedelta(hours=100), NOW)):
        expected = by_policy(docs, specialist, since, policy)
        assert trusted_feedback_count(any_store, specialist, since, policy) == expected, (specialist, since)
    # an explicit upper bound
    assert trusted_feedback_count(any_store, "technical", None, policy, until=NOW - timedelta(hours=50)) == by_policy(
        docs, "technical", None, policy, until=NOW - timedelta(hours=50))
    # the corpus exercises every rule: without them the counts would differ
    assert by_policy(docs, "business", None, policy) < sum(d["specialist_type"] == "business" for d in docs)


def test_since_is_strict(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    t = NOW - timedelta(hours=1)
    store.upsert_many("specialist_feedback", [
        {"feedback_id": "a", "specialist_type": "business", "submitted_at": t, "feedback_source": "human_expert"},
        {"feedback_id": "b", "specialist_type": "business", "submitted_at": t + timedelta(microseconds=1),
         "feedback_source": "human_expert"}])
    assert trusted_feedback_count(store, "business", t, TrustPolicy()) == 1
    assert trusted_feedback_count(store, "business", None, TrustPolicy()) == 2


def test_a_store_from_before_the_trust_indexes_gains_them(tmp_path):
    """An existing SQLite store (created without the trust columns) is migrated, and counts the same."""
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE specialist_feedback (rid INTEGER PRIMARY KEY, doc_key TEXT, doc TEXT NOT NULL, "
                 "f_specialist_type GENERATED ALWAYS AS (json_extract(doc, '$.specialist_type')) VIRTUAL, "
                 "f_submitted_at GENERATED ALWAYS AS (json_extract(doc, '$.submitted_at')) VIRTUAL, "
                 "f_opinion_id GENERATED ALWAYS AS (json_extract(doc, '$.opinion_id')) VIRTUAL)")
    replaced = "specialist_feedback__specialist_type_submitted_at_feedback_source_metadata.auto_generated_" \
               "metadata.balanced_dataset"  # the compound index before metadata.source joined it
    conn.execute(f'CREATE INDEX "{replaced}" ON specialist_feedback(f_specialist_type, f_submitted_at)')
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    docs = corpus(seed=4)
    store.upsert_many("specialist_feedback", docs)
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_xinfo(specialist_feedback)")}
    assert {"f_feedback_source", "f_metadata__auto_generated", "f_metadata__balanced_dataset",
            "f_metadata__source"} <= columns
    indexes = {row[1] for row in sqlite3.connect(path).execute("PRAGMA index_list(specialist_feedback)")}
    assert replaced not in indexes and replaced + "_metadata.source" in indexes
    assert trusted_feedback_count(store, "business", None) == by_policy(docs, "business", None, TrustPolicy())


def test_a_denied_source_is_denied_in_either_field_and_any_case(any_store):  # noqa: F811
    """The deny-list names a source as the quality exemption does: `feedback_source` or `metadata.source`,
    case and surrounding blanks ignored; the sensor's count agrees with collection's verdict."""
    policy = TrustPolicy(denied_sources=frozenset({"approval_service", "load_test"}))
    t = NOW - timedelta(hours=1)
    docs = [
        {"feedback_id": "approval", "feedback_source": "human_expert", "metadata": {"source": "approval_service"}},
        {"feedback_id": "upper", "feedback_source": "Load_Test", "metadata": {}},
        {"feedback_id": "blanks", "feedback_source": "human_expert", "metadata": {"source": " LOAD_TEST"}},
        {"feedback_id": "human", "feedback_source": "human_expert", "metadata": {"source": "ui"}},
        {"feedback_id": "not-text", "feedback_source": "human_expert", "metadata": {"source": 5}},
    ]
    for doc in docs:
        doc.update(specialist_type="business", submitted_at=t, opinion_id="op-" + doc["feedback_id"])
    assert [d["feedback_id"] for d in docs if policy.reason_to_drop(d) == "denied_source"] == [
        "approval", "upper", "blanks"]
    # the exemption and the denial read the same origins
    assert [d["feedback_id"] for d in docs if TrustPolicy(quality_exempt_sources=frozenset({"LOAD_TEST"}))
            .is_quality_exempt(d)] == ["upper", "blanks"]
    any_store.upsert_many("specialist_feedback", docs)
    assert trusted_feedback_count(any_store, "business", None, policy) == 2  # human, not-text


def test_distinct_strings_lists_text_values_only(any_store):  # noqa: F811
    any_store.upsert_many("specialist_feedback", [
        {"feedback_id": str(i), "metadata": {"source": value}, "feedback_source": "x"}
        for i, value in enumerate(["b", "a", "b", 5, None, True, {"k": "v"}, "{not json", '{"k":"v"}', ""])])
    assert any_store.distinct_strings("specialist_feedback", "metadata.source") == ["", "a", "b", '{"k":"v"}',
                                                                                     "{not json"]
    assert any_store.distinct_strings("specialist_feedback", "feedback_source") == ["x"]
