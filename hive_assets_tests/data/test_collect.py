"""Collection: validation with reason codes, quarantine, trusted-feedback rules, the join."""

from __future__ import annotations

import copy
import gc
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from hive_assets.data import _documents as d
from hive_assets.data import TrustPolicy, collect, persist_quarantine
from hive_assets.simulator import CORRUPTIONS, simulate
from hive_assets.data.store import SQLiteStore

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    store = SQLiteStore(tmp_path_factory.mktemp("collect") / "store.sqlite")
    summary = simulate(store, plans=700, days=30, seed=11, now=NOW, malformed_rate=0.02)
    return store, summary


def test_every_simulated_malformed_document_is_quarantined_with_its_reason(simulated):
    store, summary = simulated
    # the window source reads every opinion of the window, so every malformed document is seen (training's
    # label-driven source sees those of labelled opinions: test_label_driven_collect.py)
    result = collect(store, "business", now=NOW, source="window")
    corrupted_opinions = {m[1] for m in summary.malformed if m[0] == "specialist_opinions"}
    bad_plans = {pid for coll, pid, _, spec in summary.malformed if coll == "cognitive_ledger"}
    expected = Counter()
    for coll, ident, reason, spec in summary.malformed:
        if coll == "cognitive_ledger" and any(
            op["plan_id"] == ident for op in store.find("specialist_opinions", {"plan_id": ident, "specialist_type": "business"})
        ):
            expected[(coll, ident, reason)] += 1
        elif coll == "specialist_opinions" and spec == "business":
            expected[(coll, ident, reason)] += 1
        elif coll == "specialist_feedback" and spec == "business":
            opinion_id = ident.removeprefix("fb-").split("-bad")[0].removesuffix("-early").removesuffix("-machine")
            if opinion_id not in corrupted_opinions:
                expected[(coll, ident, reason)] += 1
    for op in store.find("specialist_opinions", {"specialist_type": "business"}):
        if op["plan_id"] in bad_plans and not any(
            m[1] == op["opinion_id"] for m in summary.malformed
        ):
            expected[("specialist_opinions", op["opinion_id"], "invalid_plan")] += 1
    got = Counter(zip(result.quarantine["source_collection"], result.quarantine["source_id"], result.quarantine["reason"]))
    assert got == expected
    assert len(expected) > 20  # the fixture really mixes bad documents in
    assert result.counts["quarantined"] == sum(expected.values())


def test_labels_are_the_latest_trusted_feedback(simulated):
    store, _ = simulated
    result = collect(store, "technical", now=NOW)
    assert gc.isenabled()  # collect pauses the cyclic collector only while it runs
    labelled = result.frame[result.frame["label"].notna()]
    assert len(labelled) > 300
    # the simulator's final human label is always fb-<opinion_id>; early labels and machine ones lose
    assert (labelled["feedback_id"] == "fb-" + labelled["opinion_id"]).all()
    dropped = result.counts["feedback_dropped"]
    assert set(dropped) == {"auto_generated", "balanced_dataset", "denied_source"}
    assert all(v > 0 for v in dropped.values())
    assert set(labelled["label"]) == {"approve", "reject", "review_required"}


def test_intent_filter_counts_instead_of_quarantining(simulated):
    store, _ = simulated
    strict = collect(store, "behavior", now=NOW, min_confidence=0.95)
    loose = collect(store, "behavior", now=NOW, min_confidence=0.0)
    assert strict.counts["filtered_low_intent_confidence"] > loose.counts.get("filtered_low_intent_confidence", 0)
    assert loose.counts["rows"] - strict.counts["rows"] == strict.counts["filtered_low_intent_confidence"]
    assert loose.counts["filtered_no_audit_event"] > 0
    assert len(strict.quarantine) == len(loose.quarantine)


def test_quality_filter_never_removes_approval_service_rejections(simulated):
    store, _ = simulated
    result = collect(store, "business", now=NOW, trust=TrustPolicy(min_feedback_quality=0.7))
    labelled = result.frame[result.frame["label"].notna()]
    approval = labelled[labelled["feedback_source"] == "approval_service"]
    assert (approval["label"] == "reject").sum() > 0  # rating 0.0 there means "rejected", not "bad"
    assert (labelled[labelled["feedback_source"] == "human_expert"]["human_rating"] >= 0.7).all()
    assert result.counts["feedback_dropped"]["below_min_quality"] > 0


def test_quarantine_is_kept_in_the_store_idempotently(simulated, tmp_path):
    store, _ = simulated
    result = collect(store, "evolution", now=NOW)
    assert persist_quarantine(store, result, "run-1") == len(result.quarantine)
    persist_quarantine(store, result, "run-2")
    assert store.count("quarantine", {"specialist_type": "evolution"}) == len(result.quarantine)


def test_each_kind_of_malformed_document_gets_its_reason_and_good_neighbours_stay(tmp_path):
    store = SQLiteStore(tmp_path / "store.sqlite")
    simulate(store, plans=300, days=20, seed=5, now=NOW, malformed_rate=0.0, ledger_share=1.0)
    baseline = collect(store, "business", now=NOW, min_confidence=0.0)
    assert len(baseline.quarantine) == 0
    rows = baseline.frame[baseline.frame["label"].notna()].reset_index(drop=True)
    expected: dict[tuple[str, str], str] = {}
    lost_opinions: set[str] = set()
    i = 0
    for coll, kind, reason, mutate in CORRUPTIONS:
        row = rows.iloc[i]
        i += 1
        if coll == "cognitive_ledger":
            doc = copy.deepcopy(store.find_one("cognitive_ledger", {"plan_id": row["plan_id"]}))
            mutate(doc)
            store.upsert_many(coll, [doc])
            expected[(coll, row["plan_id"])] = reason
            expected[("specialist_opinions", row["opinion_id"])] = "invalid_plan"
            lost_opinions.add(row["opinion_id"])
        elif coll == "specialist_opinions":
            doc = copy.deepcopy(store.find_one(coll, {"opinion_id": row["opinion_id"]}))
            mutate(doc)
            store.upsert_many(coll, [doc])
            expected[(coll, row["opinion_id"])] = reason
            lost_opinions.add(row["opinion_id"])
        else:
            doc = copy.deepcopy(store.find_one(coll, {"feedback_id": row["feedback_id"]}))
            mutate(doc)
            doc["feedback_id"] += "-bad"
            store.upsert_many(coll, [doc])
            expected[(coll, doc["feedback_id"])] = reason
    # more kinds the simulator does not produce: a future timestamp and an oversized plan
    row = rows.iloc[i]
    store.update_one("cognitive_ledger", {"plan_id": row["plan_id"]}, {"plan_data.created_at": NOW + timedelta(days=2)})
    expected[("cognitive_ledger", row["plan_id"])] = "timestamp_in_future"
    expected[("specialist_opinions", row["opinion_id"])] = "invalid_plan"
    lost_opinions.add(row["opinion_id"])
    # an opinion after the end of the window is outside it: neither a row nor quarantined
    row = rows.iloc[i + 2]
    store.update_one("specialist_opinions", {"opinion_id": row["opinion_id"]}, {"evaluated_at": NOW + timedelta(days=2)})
    lost_opinions.add(row["opinion_id"])
    row = rows.iloc[i + 1]
    plan_doc = store.find_one("cognitive_ledger", {"plan_id": row["plan_id"]})
    plan_doc["plan_data"]["tasks"] = [{"task_id": f"x{k}", "dependencies": []} for k in range(d.MAX_TASKS + 1)]
    store.upsert_many("cognitive_ledger", [plan_doc])
    expected[("cognitive_ledger", row["plan_id"])] = "oversized_plan"
    expected[("specialist_opinions", row["opinion_id"])] = "invalid_plan"
    lost_opinions.add(row["opinion_id"])

    result = collect(store, "business", now=NOW, min_confidence=0.0)
    got = {(r.source_collection, r.source_id): r.reason for r in result.quarantine.itertuples()}
    assert got == expected
    assert len({reason for reason in expected.values()}) >= 15
    assert set(result.frame["opinion_id"]) == set(baseline.frame["opinion_id"]) - lost_opinions


def test_feedback_whose_opinion_id_is_not_text_is_quarantined_not_dropped(tmp_path):
    """A number where the opinion id belongs (an export that turned "424242" into 424242) labels nothing:
    it used to vanish without a count; it is quarantined as wrong_type and the rows stay as they were."""
    store = SQLiteStore(tmp_path / "store.sqlite")
    simulate(store, plans=200, days=20, seed=5, now=NOW, malformed_rate=0.0, ledger_share=1.0)
    baseline = collect(store, "business", now=NOW, min_confidence=0.0)
    fb = copy.deepcopy(store.find_one("specialist_feedback", {"specialist_type": "business"}))
    fb.update(feedback_id="fb-numeric-opinion", opinion_id=424242)
    store.upsert_many("specialist_feedback", [fb])
    result = collect(store, "business", now=NOW, min_confidence=0.0)
    got = {(r.source_collection, r.source_id): r.reason for r in result.quarantine.itertuples()}
    assert got == {("specialist_feedback", "fb-numeric-opinion"): d.WRONG_TYPE}
    assert result.frame["label"].tolist() == baseline.frame["label"].tolist()


@pytest.mark.parametrize("value, expected", [
    ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ("2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    (1767323045000, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ("2026-01-02T03:04:05.000000Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ("soon", None), (None, None), (True, None),
])
def test_to_utc(value, expected):
    assert d.to_utc(value) == expected


def test_validate_plan_reports_each_problem():
    plan = {"plan_id": "p", "tasks": [{"task_id": "a", "estimated_duration_ms": -1, "dependencies": "a"},
                                      {"task_id": "a"}], "risk_score": 2}
    reasons = {p.reason for p in d.validate_plan(plan, NOW)}
    assert reasons == {d.NEGATIVE_DURATION, d.WRONG_TYPE, d.DUPLICATE_TASK_IDS, d.OUT_OF_RANGE}
    assert d.validate_plan({"plan_id": "p", "tasks": []}, NOW) == []


# -- progress lines for the run log (issue 15) ---------------------------------------------------------
def test_collect_reports_documents_read_out_of_the_total(simulated):
    store, _ = simulated
    lines: list[str] = []
    result = collect(store, "business", now=NOW, window_days=30, progress=lines.append, progress_every=100,
                     source="window")
    # the total, counted here by filtering every opinion document in Python
    start = NOW - timedelta(days=30)
    total = sum(1 for op in store.find("specialist_opinions", {"specialist_type": "business"})
                if start <= (d.to_utc(op.get("evaluated_at")) or start - timedelta(1)) <= NOW)
    assert total > 300 and result.counts["opinions_read"] == total
    periodic = [line for line in lines if line.startswith("business: opinions read") and "valid" not in line]
    assert periodic == [f"business: opinions read {n} / {total}" for n in range(100, total + 1, 100)]
    assert any(line.startswith(f"business: opinions read {total} / {total}, ") for line in lines)
    assert any("plans read" in line for line in lines) and any("feedback read" in line for line in lines)
    # without a callback, the same result; the label-driven source says how many opinions it will read
    assert collect(store, "business", now=NOW, window_days=30, source="window").snapshot_hash() == result.snapshot_hash()
    lines.clear()
    labelled = collect(store, "business", now=NOW, window_days=30, progress=lines.append, progress_every=100)
    assert labelled.snapshot_hash() == result.snapshot_hash()
    announced = int(lines[0].removeprefix("business: ").removesuffix(" opinions with trusted feedback in the window"))
    assert labelled.counts["opinions_read"] <= announced < result.counts["opinions_read"]


def test_a_problem_s_detail_is_bounded_whatever_the_value_it_quotes():
    """A 200,000-item `original_domain` quoted in full made a 20 MB detail (quarantine table, serving error)."""
    plan = {"plan_id": "p", "tasks": [{"task_id": "a"}], "original_domain": list(range(200_000))}
    (problem,) = d.validate_plan(plan, NOW)
    assert problem.reason == d.WRONG_TYPE and len(problem.detail) < 600
    assert problem.detail.startswith("original_domain=[0, 1, 2") and problem.detail.endswith(" characters)")


def test_the_snapshot_hash_changes_with_any_field_of_the_labelled_rows_and_only_with_them(tmp_path):
    """A plan replaced in place under the same ids is new data (the features change): "nothing changed"
    must not skip its retraining. An unlabelled opinion, or a plan's key order, is not."""
    store = SQLiteStore(tmp_path / "store.sqlite")
    simulate(store, plans=300, days=20, seed=5, now=NOW, malformed_rate=0.0)
    before = collect(store, "business", now=NOW)
    labelled = before.frame
    assert len(labelled) > 50 and labelled["label"].notna().all()
    same = collect(store, "business", now=NOW)
    assert same.snapshot_hash() == before.snapshot_hash()

    # 1. one labelled row's plan, replaced under the same plan_id with another priority
    pid = labelled["plan_id"].iloc[0]
    changed_plan = False
    for collection in ("cognitive_ledger", "cognitive_plans"):
        for doc in store.find(collection, {"plan_id": pid}):
            plan = doc.get("plan_data", doc)
            plan["original_priority"] = "critical" if plan.get("original_priority") != "critical" else "low"
            store.upsert_many(collection, [doc])
            changed_plan = True
    assert changed_plan
    after = collect(store, "business", now=NOW)
    assert after.frame["opinion_id"].tolist() == labelled["opinion_id"].tolist()  # same ids, same labels
    assert after.frame["label"].tolist() == labelled["label"].tolist()
    assert after.snapshot_hash() != before.snapshot_hash()

    # 2. a plan's keys in another order: the same data
    for collection in ("cognitive_ledger", "cognitive_plans"):
        for doc in store.find(collection, {"plan_id": pid}):
            if isinstance(doc.get("plan_data"), dict):
                doc["plan_data"] = dict(reversed(list(doc["plan_data"].items())))
            store.upsert_many(collection, [dict(reversed(list(doc.items())))])
    assert collect(store, "business", now=NOW).snapshot_hash() == after.snapshot_hash()

    # 3. an unlabelled opinion of the window (no feedback), changed: not training data
    window = collect(store, "business", now=NOW, source="window")
    unlabelled = window.frame[window.frame["label"].isna()]["opinion_id"].iloc[0]
    opinion = store.find_one("specialist_opinions", {"opinion_id": unlabelled})
    opinion["opinion"]["confidence_score"] = 0.123
    store.upsert_many("specialist_opinions", [opinion])
    assert collect(store, "business", now=NOW).snapshot_hash() == after.snapshot_hash()
    assert collect(store, "business", now=NOW, source="window").snapshot_hash() == after.snapshot_hash()


@pytest.mark.parametrize("source", ["labels", "window"])
def test_the_window_includes_both_ends(tmp_path, source):
    """The window ending at `now` is [now - window_days, now]: an opinion (and its feedback) at exactly
    either end is collected, one a microsecond before the start is not."""
    store = SQLiteStore(tmp_path / "store.sqlite")
    simulate(store, plans=200, days=20, seed=5, now=NOW, malformed_rate=0.0, ledger_share=1.0)
    start = NOW - timedelta(days=10)
    everything = collect(store, "business", now=NOW, window_days=30, min_confidence=0.0)
    labelled = everything.frame[everything.frame["label"].notna()]
    feedback_count = Counter(fb["opinion_id"] for fb in store.find("specialist_feedback", {}))
    once = labelled[labelled["opinion_id"].map(feedback_count) == 1]   # one feedback document each
    earlier = once[once["evaluated_at"] < start]["opinion_id"].tolist()   # outside the 10-day window
    assert len(earlier) >= 2 and len(once) > len(earlier)
    at_start, before_start = earlier[:2]
    at_now = once[once["evaluated_at"] >= start]["opinion_id"].iloc[0]
    for oid, instant in ((at_start, start), (before_start, start - timedelta(microseconds=1)), (at_now, NOW)):
        store.update_one("specialist_opinions", {"opinion_id": oid}, {"evaluated_at": instant})
        store.update_one("specialist_feedback", {"opinion_id": oid}, {"submitted_at": instant})
    result = collect(store, "business", now=NOW, window_days=10, min_confidence=0.0, source=source)
    assert len(result.quarantine) == 0
    rows = result.frame.set_index("opinion_id")
    assert {at_start, at_now} <= set(rows.index) and before_start not in rows.index
    assert rows.loc[at_start, "evaluated_at"] == start and rows.loc[at_now, "evaluated_at"] == NOW
    assert rows.loc[[at_start, at_now], "label"].notna().all()


# -- the type of every field a row copies (audit of collection) ---------------------------------------
def _opinion(**fields):
    return {"opinion_id": "op-1", "plan_id": "plan-1", "specialist_type": "business", "specialist_version": "v1",
            "evaluated_at": NOW - timedelta(days=1), "opinion": {"recommendation": "approve"}, **fields}


def _feedback(**fields):
    return {"feedback_id": "fb-1", "opinion_id": "op-1", "human_recommendation": "approve", "human_rating": 0.9,
            "feedback_source": "human_expert", "submitted_at": NOW - timedelta(hours=1), **fields}


@pytest.mark.parametrize("fields, named", [
    ({"metadata": "imported"}, "metadata='imported' is not an object"),
    ({"metadata": ["x"]}, "metadata=['x'] is not an object"),
    ({"metadata": {"ab_test_id": 5}}, "metadata.ab_test_id=5 is not text"),
    ({"metadata": {"ab_test_id": "t", "ab_arm": {"a": 1}}}, "metadata.ab_arm={'a': 1} is not text"),
    ({"specialist_version": 1.5}, "specialist_version=1.5 is not text or an integer"),
    ({"specialist_version": True}, "specialist_version=True is not text or an integer"),
    ({"specialist_version": ["v1"]}, "specialist_version=['v1'] is not text or an integer"),
    ({"opinion_id": 424242}, "opinion_id=424242 is not text"),
    ({"plan_id": {"id": 1}}, "plan_id={'id': 1} is not text"),
])
def test_an_opinion_field_of_the_wrong_type_is_wrong_type_naming_it(fields, named):
    assert [(p.reason, p.detail) for p in d.validate_opinion(_opinion(**fields), NOW, "business")] == [
        (d.WRONG_TYPE, named)]


@pytest.mark.parametrize("fields, named", [
    ({"feedback_id": 778}, "feedback_id=778 is not text"),
    ({"feedback_source": 1}, "feedback_source=1 is not text"),
    ({"feedback_source": ["human_expert"]}, "feedback_source=['human_expert'] is not text"),
    ({"metadata": "x"}, "metadata='x' is not an object"),
])
def test_a_feedback_field_of_the_wrong_type_is_wrong_type_naming_it(fields, named):
    assert [(p.reason, p.detail) for p in d.validate_feedback(_feedback(**fields), NOW)] == [(d.WRONG_TYPE, named)]


def test_what_each_field_may_hold():
    """Optional fields may be absent or null; an integer version is a version (kept as its digits)."""
    for fields in ({}, {"specialist_version": 3}, {"specialist_version": None}, {"metadata": None},
                   {"metadata": {}}, {"metadata": {"ab_test_id": None, "ab_arm": None, "other": 5}}):
        assert d.validate_opinion(_opinion(**fields), NOW, "business") == [], fields
    for fields in ({}, {"feedback_source": None}, {"metadata": {"source": 5}}):
        assert d.validate_feedback(_feedback(**fields), NOW) == [], fields
    assert [d.version_text(v) for v in (3, "v1", None)] == ["3", "v1", None]


@pytest.mark.parametrize("source", ["labels", "window"])
def test_mistyped_documents_are_quarantined_and_their_neighbours_collected_and_written(tmp_path, source):
    """An opinion whose `metadata` is text failed the whole collection (AttributeError, retried twice); a
    number among text columns (feedback_id, feedback_source, an A/B tag) failed the write of its rows,
    naming no document. Each is quarantined as wrong_type, the rest is collected and written; an integer
    `specialist_version` is a row, its version as text."""
    from hive_assets.storage import frame_from_parquet, frame_to_parquet

    store = SQLiteStore(tmp_path / "store.sqlite")
    simulate(store, plans=200, days=20, seed=5, now=NOW, malformed_rate=0.0, ledger_share=1.0)
    baseline = collect(store, "business", now=NOW, min_confidence=0.0, source=source)
    labelled = baseline.frame[baseline.frame["label"].notna()]
    once = Counter(fb["opinion_id"] for fb in store.find("specialist_feedback", {}))
    oids = [oid for oid in labelled["opinion_id"] if once[oid] == 1][:6]
    expected = {}
    for oid, field, value in zip(oids[:4], ("metadata", "metadata", "metadata", "specialist_version"),
                                 ("imported", ["x"], {"ab_test_id": 5, "ab_arm": "challenger"}, 1.5)):
        store.update_one("specialist_opinions", {"opinion_id": oid}, {field: value})
        expected[("specialist_opinions", oid)] = d.WRONG_TYPE
    store.update_one("specialist_opinions", {"opinion_id": oids[4]}, {"specialist_version": 3})
    fb = store.find_one("specialist_feedback", {"opinion_id": oids[5]})
    store.upsert_many("specialist_feedback", [  # a later correction with a numeric id, one with a numeric source
        {**fb, "feedback_id": 778, "human_recommendation": "reject", "submitted_at": NOW - timedelta(minutes=1)},
        {**fb, "feedback_id": "fb-numeric-source", "feedback_source": 7, "submitted_at": NOW - timedelta(minutes=2)}])
    expected[("specialist_feedback", "778")] = expected[("specialist_feedback", "fb-numeric-source")] = d.WRONG_TYPE

    result = collect(store, "business", now=NOW, min_confidence=0.0, source=source)
    assert {(r.source_collection, r.source_id): r.reason for r in result.quarantine.itertuples()} == expected
    rows = result.frame.set_index("opinion_id")
    assert set(rows.index) == set(baseline.frame["opinion_id"]) - set(oids[:4])
    assert rows.loc[oids[4], "specialist_version"] == "3"
    assert rows.loc[oids[5], ["feedback_id", "label"]].tolist() == [fb["feedback_id"], fb["human_recommendation"]]
    back = frame_from_parquet(frame_to_parquet(result.frame))
    assert back["specialist_version"].dropna().map(type).eq(str).all()
    frame_to_parquet(result.quarantine)


@pytest.mark.parametrize("source", ["labels", "window"])
def test_a_label_stamped_just_before_the_window_by_a_clock_behind_is_read(tmp_path, source):
    """Clocks of the services disagree: an opinion evaluated 30 s after the window's start, its only label
    stamped 10 s before it. The window collector labelled it; the label-driven one read only feedback
    stamped in the window and lost the row. Its feedback read starts FEEDBACK_CLOCK_SKEW earlier."""
    store = SQLiteStore(tmp_path / "store.sqlite")
    simulate(store, plans=200, days=20, seed=5, now=NOW, malformed_rate=0.0, ledger_share=1.0)
    start = NOW - timedelta(days=10)
    everything = collect(store, "business", now=NOW, window_days=30, min_confidence=0.0)
    once = Counter(fb["opinion_id"] for fb in store.find("specialist_feedback", {}))
    earlier = [oid for oid, at in zip(everything.frame["opinion_id"], everything.frame["evaluated_at"])
               if once[oid] == 1 and at < start]
    skewed, too_early = earlier[:2]
    store.update_one("specialist_opinions", {"opinion_id": skewed}, {"evaluated_at": start + timedelta(seconds=30)})
    store.update_one("specialist_feedback", {"opinion_id": skewed}, {"submitted_at": start - timedelta(seconds=10)})
    # an opinion before the window stays out, whenever its label was stamped
    store.update_one("specialist_opinions", {"opinion_id": too_early}, {"evaluated_at": start - timedelta(seconds=1)})
    store.update_one("specialist_feedback", {"opinion_id": too_early}, {"submitted_at": start + timedelta(seconds=10)})
    result = collect(store, "business", now=NOW, window_days=10, min_confidence=0.0, source=source)
    rows = result.frame.set_index("opinion_id")
    assert rows.loc[skewed, "label"] is not None and rows.loc[skewed, "evaluated_at"] == start + timedelta(seconds=30)
    assert too_early not in rows.index
    window = collect(store, "business", now=NOW, window_days=10, min_confidence=0.0, source="window")
    labelled = window.frame[window.frame["label"].notna()].reset_index(drop=True)
    assert result.frame[result.frame["label"].notna()].reset_index(drop=True).equals(labelled)


def test_an_audit_event_stamped_at_the_window_end_counts_as_opinions_and_feedback_there_do(tmp_path):
    """The window is [start, now]: an opinion and its label at `now` count, and so does now its intent's
    audit event (one stamped at `now` was ignored, the opinion filtered as having none); one after not."""
    from hive_assets.data import audit_confidences_from_store

    store = SQLiteStore(tmp_path / "store.sqlite")
    store.upsert_many("intentions_audit", [{"id": "at-end", "timestamp": NOW, "confidence": 0.9},
                                           {"id": "after", "timestamp": NOW + timedelta(milliseconds=1),
                                            "confidence": 0.9}])
    read = audit_confidences_from_store(store)
    assert read(["at-end", "after"], NOW - timedelta(days=1), NOW) == {"at-end": 0.9}

    simulate(store, plans=100, days=10, seed=5, now=NOW, malformed_rate=0.0, ledger_share=1.0)
    result = collect(store, "business", now=NOW, min_confidence=0.0)
    oid, intent = result.frame[["opinion_id", "intent_id"]].iloc[0]
    store.upsert_many("intentions_audit", [{"id": intent, "timestamp": NOW, "confidence": 0.9}])
    store.update_one("specialist_opinions", {"opinion_id": oid}, {"evaluated_at": NOW})
    store.update_one("specialist_feedback", {"opinion_id": oid}, {"submitted_at": NOW})
    at_end = collect(store, "business", now=NOW, min_confidence=0.0)
    assert oid in set(at_end.frame["opinion_id"])
    assert at_end.counts["filtered_no_audit_event"] == result.counts["filtered_no_audit_event"]
    assert at_end.frame.set_index("opinion_id").loc[oid, "intent_confidence"] == 0.9
