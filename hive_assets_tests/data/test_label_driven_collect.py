"""Collection driven from the labels (issue 23) against the collector it replaced.

`reference_collect` (a copy of the old algorithm, kept in the tests only) reads every opinion of the
window; `collect` reads only opinions with trusted feedback in the window. On simulated stores at 2 %,
50 % and 100 % answered, with malformed documents and the production-shapes corpus mixed in, both must
give the same labelled rows (every column), the same labels and snapshot hash, and the new quarantine
must be the old one restricted to the documents the new collector reads (computed here independently,
by scanning the store in Python).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from hive_assets.data import TrustPolicy, collect, to_utc
from hive_assets.data import _documents as d
from hive_assets.data._collect import FEEDBACK_CLOCK_SKEW
from hive_assets.storage import frame_from_parquet, frame_to_parquet
from hive_assets.data.store import SQLiteStore
from hive_assets.simulator import simulate
from hive_assets_tests.data.production_corpus import write_edge_cases, write_production_corpus
from hive_assets_tests.data.reference_collect import reference_collect

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
WINDOW_DAYS = 90


@pytest.fixture(scope="module", params=[0.02, 0.5, 1.0], ids=lambda r: f"answered-{r:.0%}")
def store(request, tmp_path_factory):
    store = SQLiteStore(tmp_path_factory.mktemp("labels") / "store.sqlite")
    simulate(store, plans=300, days=30, seed=31, now=NOW, malformed_rate=0.03, feedback_rate=request.param)
    write_production_corpus(store, NOW)  # encrypted intents, approval-service feedback, plain plan documents
    # fields of the wrong type, an integer version, a numeric feedback_id, a label stamped before the window
    store.edge_cases = write_edge_cases(store, NOW, NOW - timedelta(days=WINDOW_DAYS))
    store.answered = request.param
    return store


def _read_by_new_collector(store, specialist: str, now: datetime, trust: TrustPolicy) -> dict[str, set[str]]:
    """What the label-driven collector reads, computed by scanning every document in Python. Its feedback
    read starts FEEDBACK_CLOCK_SKEW before the window (a label stamped by a clock a little behind)."""
    start = now - timedelta(days=WINDOW_DAYS)
    feedback_start = start - FEEDBACK_CLOCK_SKEW
    trust = dataclasses.replace(trust, min_feedback_quality=0.0)  # the quality filter is the join's, not discovery's
    feedback = list(store.find("specialist_feedback"))
    labelled = set()
    for fb in feedback:
        submitted = to_utc(fb.get("submitted_at"))
        if (fb.get("specialist_type") == specialist and submitted is not None and feedback_start <= submitted <= now
                and not d.validate_feedback(fb, now) and trust.reason_to_drop(fb) is None):
            labelled.add(fb["opinion_id"])
    opinions = [op for op in store.find("specialist_opinions")
                if op.get("opinion_id") in labelled and op.get("specialist_type") == specialist
                and (ts := to_utc(op.get("evaluated_at"))) is not None and start <= ts <= now]
    valid = {op["opinion_id"] for op in opinions if not d.validate_opinion(op, now, specialist)}
    malformed_in_window = set()
    for fb in feedback:
        submitted = to_utc(fb.get("submitted_at"))
        if (fb.get("specialist_type") == specialist and submitted is not None and feedback_start <= submitted <= now
                and (problems := d.validate_feedback(fb, now))):
            malformed_in_window.add(("specialist_feedback", str(fb.get("feedback_id") or ""), problems[0].reason,
                                     "; ".join(p.detail for p in problems)))
    return {
        "malformed_feedback_in_window": malformed_in_window,
        "specialist_opinions": {op["opinion_id"] for op in opinions},
        "specialist_feedback": {str(fb["feedback_id"]) for fb in feedback if fb.get("opinion_id") in valid},
        "plans": {op["plan_id"] for op in opinions if op["opinion_id"] in valid},
    }


def _quarantine_keys(result) -> set[tuple[str, str, str, str]]:
    q = result.quarantine
    return set(zip(q["source_collection"], q["source_id"], q["reason"], q["detail"]))


def _compare(store, specialist: str, now: datetime = NOW, trust: TrustPolicy | None = None) -> tuple:
    trust = trust or TrustPolicy()
    old = reference_collect(store, specialist, now=now, window_days=WINDOW_DAYS, trust=trust)
    new = collect(store, specialist, now=now, window_days=WINDOW_DAYS, trust=trust)
    old_rows = old.frame[old.frame["label"].notna()].reset_index(drop=True)
    # the old collector kept plans as trees, `collect` keeps their JSON text: the same plans once both are
    # read by the standard library
    old_rows["plan"] = [json.loads(json.dumps(p, default=d.jsonable)) for p in old_rows["plan"]]
    assert all(isinstance(p, str) for p in new.frame["plan"])
    pd.testing.assert_frame_equal(new.frame.assign(plan=[json.loads(p) for p in new.frame["plan"]]), old_rows)
    assert new.snapshot_hash() == old.snapshot_hash()  # and the same hash as the trees gave
    assert new.counts["rows"] == new.counts["labelled"] == old.counts["labelled"]
    read = _read_by_new_collector(store, specialist, now, trust)
    expected = {key for key in _quarantine_keys(old)
                if key[1] in (read["plans"] if key[0] in ("cognitive_ledger", "cognitive_plans") else read[key[0]])}
    # plus the malformed feedback the index read of the window meets (read, so quarantined, even when
    # its opinion is never read)
    expected |= read["malformed_feedback_in_window"]
    assert _quarantine_keys(new) == expected
    return old, new, read


@pytest.mark.parametrize("specialist", ["business", "technical", "architecture"])
def test_same_rows_labels_and_quarantine_of_what_is_read(store, specialist):
    old, new, read = _compare(store, specialist)
    # the cost follows the labels: only opinions with trusted feedback are read
    assert new.counts["opinions_read"] == len(read["specialist_opinions"]) <= old.counts["opinions_read"]
    labelled_share = old.counts["labelled"] / max(old.counts["rows"], 1)
    if labelled_share < 0.1:
        assert new.counts["opinions_read"] < 0.1 * old.counts["opinions_read"]


def test_mistyped_fields_are_quarantined_and_a_label_stamped_before_the_window_is_read(store):
    """Fields of the wrong type (an opinion's `metadata` as text or a list, an A/B tag as a number or an
    object, a number as `feedback_source` or `feedback_id`) are quarantined as wrong_type naming the field;
    they failed the whole collection (AttributeError) or the Parquet write of its rows. An integer
    `specialist_version` is a row, as text. A label stamped 10 s before the window's start for an opinion
    30 s after it is read, as the window collector reads it (`_compare` checks the rest is the same)."""
    old, new, _ = _compare(store, "business")
    cases = store.edge_cases
    for result in (old, new):
        got = {(r.source_collection, r.source_id): (r.reason, r.detail) for r in result.quarantine.itertuples()}
        for key, reason in cases.quarantined.items():
            assert got[key][0] == reason and cases.field_named[key] in got[key][1], (key, got.get(key))
        rows = result.frame.set_index("opinion_id")
        for oid, columns in cases.rows.items():
            assert {name: rows.loc[oid, name] for name in columns} == columns, oid
        for key in cases.quarantined:
            if key[0] == "specialist_opinions":
                assert key[1] not in rows.index
        written = frame_from_parquet(frame_to_parquet(result.frame))  # every text column stays text
        assert written["specialist_version"].map(type).isin([str, type(None)]).all()
        assert written["feedback_id"].dropna().map(type).eq(str).all()
        frame_to_parquet(result.quarantine)


def test_the_store_mixes_in_what_collection_must_quarantine(store):
    old, new, _ = _compare(store, "business")
    assert len(old.quarantine) > 20  # the malformed documents are there
    if store.answered < 1.0:  # those of unlabelled opinions are not read any more
        assert len(new.quarantine) < len(old.quarantine)
    if store.answered >= 0.5:  # and those of labelled ones still are
        assert len(set(new.quarantine["reason"])) >= 5


def test_same_result_with_the_quality_filter_and_a_backfill(store):
    _compare(store, "business", trust=TrustPolicy(min_feedback_quality=0.7))
    _compare(store, "technical", now=NOW - timedelta(days=9))


def test_the_join_reads_only_what_collection_has_not_read_and_validates_that(tmp_path):
    """Collection reads the window's feedback first (one filter) and validates it; the join then takes those
    documents as they are and reads only the other feedback of its opinions (the filter's complement):
    each document read and validated once, the labels the same as a join that reads everything."""
    from hive_assets.data import latest_trusted_feedback

    now = datetime(2026, 5, 1, tzinfo=timezone.utc)
    window = {"specialist_type": "business", "submitted_at": {"$gte": now - timedelta(days=90), "$lte": now}}

    def feedback(fid, oid, label, minutes, **extra):
        return {"feedback_id": fid, "opinion_id": oid, "specialist_type": "business", "human_recommendation": label,
                "human_rating": 0.9, "feedback_source": "human_expert",
                "submitted_at": now - timedelta(minutes=minutes), **extra}

    store = SQLiteStore(tmp_path / "store.sqlite")
    store.upsert_many("specialist_feedback", [
        feedback("fb-a", "op-1", "approve", 30),  # in the window: collection read it
        feedback("fb-b", "op-1", "maybe", 10, specialist_type=None),  # outside it, malformed
        feedback("fb-c", "op-2", "reject", 20, specialist_type="technical"),  # outside it, valid
        feedback("fb-d", "op-2", "maybe", 5),  # in the window, malformed: collection quarantined it already
        feedback("fb-e", "op-2", "approve", -60),  # after `now`: not known yet
    ])
    known = {"op-1": [feedback("fb-a", "op-1", "approve", 30)]}  # the valid documents collection kept
    malformed: list = []
    latest, dropped, read = latest_trusted_feedback(
        store, ["op-1", "op-2"], now, TrustPolicy(), known=known, known_filter=window,
        on_malformed=lambda fb, problems: malformed.append((fb["feedback_id"], problems[0].reason)))
    assert read == 4  # fb-a as collection read it, fb-b, fb-c and fb-e from the store; fb-d not again
    assert latest["op-1"] is known["op-1"][0]  # the validated document, not a second copy
    assert {o: fb["feedback_id"] for o, fb in latest.items()} == {"op-1": "fb-a", "op-2": "fb-c"}
    assert malformed == [("fb-b", d.UNKNOWN_HUMAN_RECOMMENDATION)]
    assert dict(dropped) == {"submitted_after_window": 1}
    everything, _, read_all = latest_trusted_feedback(store, ["op-1", "op-2"], now, TrustPolicy())
    assert read_all == 5 and {o: fb["feedback_id"] for o, fb in everything.items()} == {"op-1": "fb-a", "op-2": "fb-c"}
    with pytest.raises(ValueError, match="known_filter"):
        latest_trusted_feedback(store, ["op-1"], now, TrustPolicy(), known=known)
