"""Hostile documents (issue 21): too deep, lone surrogates, undecodable rows. Each is quarantined with its
own reason code and every other row is collected, on the SQLite store and on FerretDB, and `hive collect`
exits 0 on a store holding all of them."""

from __future__ import annotations

import json
import pickle
import shutil
from datetime import datetime, timedelta, timezone

import bson
import pytest
from bson.raw_bson import RawBSONDocument

from hive_assets.data import _documents as d
from hive_assets.data import collect, persist_quarantine
from hive_assets.data.store import SQLiteStore
from hive_assets.data.store.mongo import MongoStore
from hive_assets.simulator import simulate
from hive_assets_tests.data.store import mongo_store  # noqa: F401  (fixture)

SPECIALIST = "business"
TEN_MB = 10 * 1024 * 1024
OVER_THE_LIMIT = 70  # levels: over the 64 of `MAX_DEPTH`
# reason codes as the README and the quarantine collection spell them
TOO_DEEP, INVALID_STRING, INVALID_PLAN, UNREADABLE = "too_deep", "invalid_string", "invalid_plan", "unreadable_document"
SURROGATE = "\ud800"  # valid JSON (`"\ud800"`), refused by orjson, BSON and every UTF-8 writer


def deep_text(levels: int) -> str:
    """JSON text of an object nested `levels` deep, built without recursion."""
    return '{"x":' * levels + "1" + "}" * levels


def deep_value(levels: int) -> dict:
    root = node = {}
    for _ in range(levels - 1):
        node["x"] = {}
        node = node["x"]
    node["x"] = 1
    return root


# -- the checks themselves ------------------------------------------------------------------------------

def test_structure_check_is_iterative_and_names_the_reason():
    assert d.structure_problems(deep_value(d.MAX_DEPTH)) == []
    assert [p.reason for p in d.structure_problems(deep_value(d.MAX_DEPTH + 1))] == [d.TOO_DEEP]
    hundred_thousand = deep_value(100_000)  # far beyond Python's recursion limit: no RecursionError
    assert [p.reason for p in d.structure_problems(hundred_thousand)] == [d.TOO_DEEP]
    kept = d.safe_copy(hundred_thousand)
    pickle.dumps(kept)  # what the quarantine keeps is picklable and writable
    assert d.structure_problems(kept) == []
    assert [p.reason for p in d.structure_problems({"a": [{"b": "ok" + SURROGATE}]})] == [d.INVALID_STRING]
    assert [p.reason for p in d.structure_problems({"a" + SURROGATE: 1})] == [d.INVALID_STRING]
    assert d.structure_problems({"a": "NUL \x00 is text", "é": "ü"}) == []  # NUL and non-ASCII are valid text
    assert d.safe_copy({"a" + SURROGATE: [SURROGATE]}) == {"a\\ud800": ["\\ud800"]}
    for reason in (d.TOO_DEEP, d.INVALID_STRING, d.UNREADABLE_DOCUMENT):
        assert reason in d.REASON_CODES


def test_mongo_reader_decodes_one_document_at_a_time():
    """Bytes FerretDB cannot hold (it rewrites invalid UTF-8 as U+FFFD on write), as MongoDB would return
    them: decoded alone, never failing a batch."""
    store = MongoStore("mongodb://127.0.0.1:1", "never_connected")  # no server needed to decode
    invalid = bson.encode({"opinion_id": "op-1", "text": "@@@"}).replace(b"@@@", b"\xed\xa0\x80")
    doc = store._decode(RawBSONDocument(invalid), "opinion_id")
    assert [p.reason for p in d.structure_problems(doc)] == [d.INVALID_STRING]
    good = bson.encode({"opinion_id": "op-2", "n": 1})
    lying = good.replace(b"\x05\x00\x00\x00op-2", b"\x50\x00\x00\x00op-2")  # a string length past the end
    broken = store._decode(RawBSONDocument(lying), "opinion_id")
    assert [p.reason for p in d.structure_problems(broken)] == [d.UNREADABLE_DOCUMENT]



def test_an_unreadable_placeholder_keeps_the_join_field_a_scan_matches_it_by():
    """FerretDB's one-scan path for many ids matches documents by the join field client-side: the
    placeholder of a document the decoder refuses keeps that top-level field (text, or text elements of an
    array), so the scan yields it and collection quarantines it instead of skipping it."""
    store = MongoStore("mongodb://127.0.0.1:1", "never_connected")  # no server needed to decode
    good = bson.encode({"feedback_id": "fb-1", "opinion_id": "op-7", "tags": ["op-8", 3],
                        "metadata": {"note": "abcd"}})
    # a nested string's length past the end: the top level decodes, the document does not
    lying = good.replace(b"\x05\x00\x00\x00abcd", b"\x50\x00\x00\x00abcd")
    assert lying != good
    placeholder = store._decode(RawBSONDocument(lying), "feedback_id", ("opinion_id", "tags"))
    assert [p.reason for p in d.structure_problems(placeholder)] == [d.UNREADABLE_DOCUMENT]
    assert (placeholder["feedback_id"], placeholder["opinion_id"], placeholder["tags"]) == ("fb-1", "op-7", ["op-8"])
    assert "opinion_id" not in store._decode(RawBSONDocument(lying), "feedback_id")  # only the fields asked for

# -- collection over a store holding every hostile document ------------------------------------------------

def _targets(store, now):
    """Five opinions that are rows of a clean collection, and where their plan and feedback live."""
    clean = collect(store, SPECIALIST, now=now)
    assert clean.quarantine.empty and len(clean.frame) >= 20
    labelled = clean.frame[clean.frame["feedback_id"].notna()]
    picked = list(labelled["opinion_id"][:5])
    out = {}
    for name, oid in zip("abcde", picked):
        op = store.find_one("specialist_opinions", {"opinion_id": oid})
        pid = op["plan_id"]
        plan_coll = "cognitive_ledger" if store.find_one("cognitive_ledger", {"plan_id": pid}) else "cognitive_plans"
        fid = labelled.loc[labelled["opinion_id"] == oid, "feedback_id"].iloc[0]
        out[name] = {"oid": oid, "pid": pid, "plan_coll": plan_coll, "fid": fid}
    return clean, out


def _plan_doc(store, target):
    return store.find_one(target["plan_coll"], {"plan_id": target["pid"]})


def _plan_part(doc):
    return doc["plan_data"] if "plan_data" in doc else doc


def _write_sqlite_hostile(store: SQLiteStore, t: dict) -> None:
    """As another writer would: JSON text put in the rows directly (escapes and nesting kept)."""
    def put(collection, key, doc, splice=None):
        text = json.dumps(doc, default=str)
        for marker, raw in (splice or {}).items():
            text = text.replace(json.dumps(marker), raw)
        store._conn.execute(f'UPDATE "{collection}" SET doc = ? WHERE doc_key = ?', (text, key))

    a = _plan_doc(store, t["a"])
    _plan_part(a)["annotations"] = "@DEEP@"
    put(t["a"]["plan_coll"], t["a"]["pid"], a, {"@DEEP@": deep_text(900)})
    b = _plan_doc(store, t["b"])
    _plan_part(b)["original_domain"] = "@S@"
    put(t["b"]["plan_coll"], t["b"]["pid"], b, {"@S@": '"BUSINESS\\ud800"'})
    c = store.find_one("specialist_opinions", {"opinion_id": t["c"]["oid"]})
    c["opinion"]["reasoning_summary"] = "@S@"
    put("specialist_opinions", t["c"]["oid"], c, {"@S@": '"looks fine \\ud800"'})
    fb = store.find_one("specialist_feedback", {"feedback_id": t["d"]["fid"]})
    fb["comments"] = "@S@"
    put("specialist_feedback", t["d"]["fid"], fb, {"@S@": '"\\ud800 agreed"'})
    e = _plan_doc(store, t["e"])
    _plan_part(e).update({"notes": "y" * TEN_MB, "annotations": "@DEEP@"})
    put(t["e"]["plan_coll"], t["e"]["pid"], e, {"@DEEP@": deep_text(OVER_THE_LIMIT)})


def _write_ferretdb_hostile(store: MongoStore, t: dict) -> None:
    """What FerretDB stores: nesting up to ~500 levels (its SQLite backend refuses more), 10 MB documents;
    invalid UTF-8 sent raw comes back as U+FFFD, so those documents are collected, not quarantined."""
    def replace(collection, key_field, key, doc):
        store.db[collection].replace_one({key_field: key}, doc)

    a = _plan_doc(store, t["a"])
    _plan_part(a)["annotations"] = deep_value(150)
    replace(t["a"]["plan_coll"], "plan_id", t["a"]["pid"], a)
    c = store.find_one("specialist_opinions", {"opinion_id": t["c"]["oid"]})
    c["opinion"]["reasoning_summary"] = "@@@"
    raw = bson.encode(c, codec_options=store.client.codec_options).replace(b"@@@", b"\xed\xa0\x80")
    replace("specialist_opinions", "opinion_id", t["c"]["oid"], RawBSONDocument(raw))
    e = _plan_doc(store, t["e"])
    _plan_part(e).update({"notes": "y" * TEN_MB, "annotations": deep_value(OVER_THE_LIMIT)})
    replace(t["e"]["plan_coll"], "plan_id", t["e"]["pid"], e)


def _quarantined(result) -> set[tuple[str, str, str]]:
    q = result.quarantine
    return set(zip(q["source_collection"], q["source_id"], q["reason"]))


def _assert_kept_safely(store, result, expected):
    """The result pickles (the IO manager's step that a 900-deep plan broke) and the quarantine is written
    and read back by the same store."""
    pickle.loads(pickle.dumps(result))
    assert persist_quarantine(store, result, run_id="r1") == len(expected)
    stored = list(store.find("quarantine", {"specialist_type": SPECIALIST}))
    assert {(q["source_collection"], q["source_id"], q["reason"]) for q in stored} == expected
    big = [q for q in stored if q["document_chars"] > TEN_MB]
    assert len(big) == 1 and big[0]["document"]["oversized_document"] is True


@pytest.fixture(scope="module")
def hostile_sqlite(tmp_path_factory):
    """A SQLite store file holding every hostile document (its clean collection and targets alongside),
    built once; each test works on a copy. Recent data: `hive collect` reads up to the wall clock."""
    path = tmp_path_factory.mktemp("hostile") / "store.sqlite"
    store = SQLiteStore(path)
    now = datetime.now(timezone.utc) - timedelta(minutes=10)
    simulate(store, plans=120, days=20, seed=3, now=now, malformed_rate=0.0, specialists=[SPECIALIST])
    clean, t = _targets(store, now)
    _write_sqlite_hostile(store, t)
    store.close()
    expected = {
        (t["a"]["plan_coll"], t["a"]["pid"], TOO_DEEP), ("specialist_opinions", t["a"]["oid"], INVALID_PLAN),
        (t["b"]["plan_coll"], t["b"]["pid"], INVALID_STRING), ("specialist_opinions", t["b"]["oid"], INVALID_PLAN),
        ("specialist_opinions", t["c"]["oid"], INVALID_STRING),
        ("specialist_feedback", t["d"]["fid"], INVALID_STRING),
        (t["e"]["plan_coll"], t["e"]["pid"], TOO_DEEP), ("specialist_opinions", t["e"]["oid"], INVALID_PLAN),
    }
    return path, now, clean, t, expected


def test_sqlite_each_hostile_document_is_quarantined_and_the_rest_collected(hostile_sqlite, tmp_path):
    source, now, clean, t, expected = hostile_sqlite
    shutil.copy(source, tmp_path / "store.sqlite")
    store = SQLiteStore(tmp_path / "store.sqlite")

    result = collect(store, SPECIALIST, now=now)

    assert _quarantined(result) == expected
    # d's only feedback is quarantined, so it has no label: collection (driven by the labels) has no row
    gone = {t[n]["oid"] for n in "abcde"}
    assert set(result.frame["opinion_id"]) == set(clean.frame["opinion_id"]) - gone
    assert t["d"]["fid"] not in set(result.frame["feedback_id"])  # its quarantined feedback is no label
    _assert_kept_safely(store, result, expected)


def test_sqlite_reader_turns_an_undecodable_row_into_a_placeholder(tmp_path):
    store = SQLiteStore(tmp_path / "store.sqlite")
    store.upsert_many("specialist_opinions", [{"opinion_id": f"op-{i}", "specialist_type": SPECIALIST}
                                              for i in range(3)])
    # SQLite's JSON functions take these (nesting up to its own limit, bytes that are not UTF-8); orjson
    # (1,024 levels) and Python's json (its recursion limit) do not
    store._conn.execute('UPDATE specialist_opinions SET doc = ? WHERE doc_key = ?',
                        ('{"opinion_id": "op-1", "specialist_type": "business", "x": ' + deep_text(1500) + "}", "op-1"))
    store._conn.execute('UPDATE specialist_opinions SET doc = CAST(? AS TEXT) WHERE doc_key = ?',
                        (b'{"opinion_id": "op-2", "t": "\xff\xfe"}', "op-2"))
    docs = list(store.find("specialist_opinions"))
    assert docs[0] == {"opinion_id": "op-0", "specialist_type": SPECIALIST}
    assert [(doc.get("opinion_id"), d.structure_problems(doc)[0].reason) for doc in docs[1:]] == [
        ("op-1", TOO_DEEP), ("op-2", INVALID_STRING)]
    assert [d.validate_opinion(doc, datetime.now(timezone.utc))[0].reason for doc in docs[1:]] == [
        TOO_DEEP, INVALID_STRING]


def test_ferretdb_each_hostile_document_is_quarantined_and_the_rest_collected(mongo_store):  # noqa: F811
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    simulate(mongo_store, plans=80, days=20, seed=3, now=now, malformed_rate=0.0, specialists=[SPECIALIST])
    clean, t = _targets(mongo_store, now)
    _write_ferretdb_hostile(mongo_store, t)

    result = collect(mongo_store, SPECIALIST, now=now)

    expected = {
        (t["a"]["plan_coll"], t["a"]["pid"], TOO_DEEP), ("specialist_opinions", t["a"]["oid"], INVALID_PLAN),
        (t["e"]["plan_coll"], t["e"]["pid"], TOO_DEEP), ("specialist_opinions", t["e"]["oid"], INVALID_PLAN),
    }
    assert _quarantined(result) == expected
    assert set(result.frame["opinion_id"]) == set(clean.frame["opinion_id"]) - {t["a"]["oid"], t["e"]["oid"]}
    _assert_kept_safely(mongo_store, result, expected)


def test_hive_collect_exits_0_on_a_store_holding_every_hostile_document(hostile_sqlite, tmp_path):
    from hive_assets_tests.cli.test_cli import HOME_REL, hive, user_env

    source, _, clean, _, expected = hostile_sqlite
    cwd = tmp_path / "work"
    (cwd / HOME_REL).mkdir(parents=True)
    (tmp_path / "user").mkdir()
    shutil.copy(source, cwd / HOME_REL / "store.sqlite")

    out = hive("collect", "--specialist", SPECIALIST, "--min-samples", "10", "--min-confidence", "0.7", "--json",
               cwd=cwd, env=user_env(tmp_path / "user"))

    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert record["quarantined"] == {TOO_DEEP: 2, INVALID_PLAN: 3, INVALID_STRING: 3}
    assert record["rows"] == len(clean.frame) - 5  # d lost its only label
    stored = SQLiteStore(cwd / HOME_REL / "store.sqlite")
    assert {(q["source_collection"], q["source_id"], q["reason"]) for q in stored.find("quarantine")} == expected


# -- times no datetime holds ------------------------------------------------------------------------------

OUT_OF_RANGE_TIMES = [1e15, 1e20, -1e20, 10**30, 253402300800000, "9999-12-31T23:59:59-05:00",
                      "0001-01-01T00:00:00+05:00", "0500-06-01T00:00:00Z", datetime(1, 1, 1),
                      "1500-01-01T00:00:00Z", "2300-01-01T00:00:00Z", -1e13]  # beyond pandas' datetimes


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
def test_a_time_no_datetime_holds_is_not_a_timestamp(value):
    """Epoch milliseconds of 1e15 raised ValueError (year 33658), 1e20 OSError (time_t), and an ISO time at
    the calendar's edge OverflowError (its offset moves it past year 9999 or before year 1)."""
    assert d.to_utc(value) is None
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    plan = {"plan_id": "p", "tasks": [], "created_at": value}
    assert [p.reason for p in d.validate_plan(plan, now)] == [d.INVALID_TIMESTAMP]


def test_times_inside_the_range_keep_their_meaning():
    assert d.to_utc(1767225600000) == d.to_utc("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert d.to_utc("1700-01-01T00:00:00+00:00") == d.EARLIEST_TIME
    assert d.to_utc("2259-12-31T23:00:00-01:00") == d.LATEST_TIME
    import pandas as pd  # the range's ends, a window before and after them, are pandas times

    assert pd.Timestamp(d.EARLIEST_TIME - timedelta(days=365)) < pd.Timestamp(d.LATEST_TIME + timedelta(days=365))


def test_a_plan_created_at_a_time_no_datetime_holds_is_quarantined_and_the_rest_collected(tmp_path):
    """Plans are read by id, whatever their times: one with such a `created_at` failed the whole collection
    (a ValueError from the conversion) instead of being quarantined."""
    store = SQLiteStore(tmp_path / "store.sqlite")
    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    simulate(store, plans=120, days=20, seed=3, now=now, malformed_rate=0.0, specialists=[SPECIALIST])
    clean, t = _targets(store, now)
    for name, value in (("a", 1e20), ("b", "9999-12-31T23:59:59-05:00"), ("c", 1e15)):
        doc = _plan_doc(store, t[name])
        _plan_part(doc)["created_at"] = value
        store.upsert_many(t[name]["plan_coll"], [doc])

    result = collect(store, SPECIALIST, now=now)

    bad = {(t[n]["plan_coll"], t[n]["pid"], "invalid_timestamp") for n in "abc"}
    assert _quarantined(result) == bad | {("specialist_opinions", t[n]["oid"], INVALID_PLAN) for n in "abc"}
    assert set(result.frame["opinion_id"]) == set(clean.frame["opinion_id"]) - {t[n]["oid"] for n in "abc"}


# -- durations no feature can hold ------------------------------------------------------------------------

def test_a_duration_over_the_bound_is_out_of_range_and_the_bound_keeps_every_feature_finite():
    """Two tasks of 1e308 ms summed to infinity: the plan passed validation and its infinite features failed
    every fit of its specialist (StandardScaler refuses them) while it stayed in the window."""
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    from hive_assets.features import features_frame

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    huge = {"plan_id": "p", "tasks": [{"task_id": "a", "estimated_duration_ms": 1e308},
                                      {"task_id": "b", "estimated_duration_ms": 1e308, "dependencies": ["a"]}]}
    numeric = features_frame([huge]).select_dtypes("number")
    assert not np.isfinite(numeric.to_numpy()).all()  # what such a plan made of the features
    with pytest.raises(ValueError, match="infinity"):
        StandardScaler().fit(numeric.to_numpy())
    assert [p.reason for p in d.validate_plan(huge, now)] == [d.OUT_OF_RANGE, d.OUT_OF_RANGE]
    assert [p.reason for p in d.validate_plan({"plan_id": "p", "tasks": [], "estimated_total_duration_ms": 1e300},
                                              now)] == [d.OUT_OF_RANGE]
    # a plan's total below 0 is what a task's is (it was accepted down to -1e15)
    for total in (-1, -1e300, -10 ** 400):
        assert [p.reason for p in d.validate_plan({"plan_id": "p", "tasks": [], "estimated_total_duration_ms": total},
                                                  now)] == [d.NEGATIVE_DURATION]
    # the worst plan the bounds let through: 5,000 chained tasks at the bound, every feature finite
    chain = {"plan_id": "p", "estimated_total_duration_ms": d.MAX_DURATION_MS, "risk_score": 1.0,
             "tasks": [{"task_id": f"t{i}", "estimated_duration_ms": d.MAX_DURATION_MS * (i % 2),
                        "dependencies": [f"t{i - 1}"] if i else []} for i in range(d.MAX_TASKS)]}
    assert d.validate_plan(chain, now) == []
    assert np.isfinite(features_frame([chain]).select_dtypes("number").to_numpy()).all()


def test_a_plan_with_a_duration_over_the_bound_is_quarantined_and_the_rest_collected(tmp_path):
    store = SQLiteStore(tmp_path / "store.sqlite")
    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    simulate(store, plans=120, days=20, seed=3, now=now, malformed_rate=0.0, specialists=[SPECIALIST])
    clean, t = _targets(store, now)
    doc = _plan_doc(store, t["a"])
    for task in _plan_part(doc)["tasks"]:
        task["estimated_duration_ms"] = 1e308
    store.upsert_many(t["a"]["plan_coll"], [doc])

    result = collect(store, SPECIALIST, now=now)

    assert _quarantined(result) == {(t["a"]["plan_coll"], t["a"]["pid"], "out_of_range"),
                                    ("specialist_opinions", t["a"]["oid"], INVALID_PLAN)}
    assert set(result.frame["opinion_id"]) == set(clean.frame["opinion_id"]) - {t["a"]["oid"]}


@pytest.mark.parametrize("value", ["1500-01-01T00:00:00Z", "1650-01-01T00:00:00Z"])
def test_feedback_at_a_time_pandas_cannot_hold_fails_no_collection(tmp_path, value):
    """A review found that a feedback time before 1677 passed `to_utc` and failed the frame of a window
    collection (the drift check's) with pandas' OverflowError: it is now not a timestamp (quarantined)."""
    store = SQLiteStore(tmp_path / "store.sqlite")
    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    simulate(store, plans=120, days=20, seed=3, now=now, malformed_rate=0.0, specialists=[SPECIALIST])
    clean = collect(store, SPECIALIST, now=now, source="window")
    oid = clean.frame.loc[clean.frame["feedback_id"].notna(), "opinion_id"].iloc[0]
    answers = [f for f in store.find("specialist_feedback") if f["opinion_id"] == oid]
    store.upsert_many("specialist_feedback", [{**f, "submitted_at": value} for f in answers])

    result = collect(store, SPECIALIST, now=now, source="window")

    assert {("specialist_feedback", f["feedback_id"], "invalid_timestamp") for f in answers} <= _quarantined(result)
    assert len(result.frame) == len(clean.frame)  # the opinion stays, without that label
    assert result.frame.loc[result.frame["opinion_id"] == oid, "label"].isna().all()


@pytest.mark.parametrize("stamp, counts", [
    ("2300-01-01T00:00:00Z", False), (1e20, False), (10**400, False), ("9999-12-31T23:59:59-05:00", False),
    (datetime(2262, 1, 1), False),  # stamped after every time collection holds: after the window's end too
    ("2026-02-27T00:00:00Z", True), ("1500-01-01T00:00:00Z", True), (-1e20, True),
    ("0001-01-01T00:00:00+05:00", True),  # before the window: an intent may precede it
    (None, True), ("yesterday", True), (float("inf"), True), (float("nan"), True),  # undated
])
def test_an_audit_event_stamped_after_every_time_is_after_the_window_s_end(tmp_path, stamp, counts):
    """The reader drops an event stamped at or after the window's end (it did not exist then). One stamped in
    2300 is no timestamp to `to_utc`, and was counted as if undated."""
    from hive_assets.data._audit import audit_confidences_from_store

    store = SQLiteStore(tmp_path / "store.sqlite")
    store.upsert_many("intentions_audit", [{"id": "i2", "confidence": 0.8, "timestamp": "2026-02-01T00:00:00Z"}])
    event = {"id": "i1", "confidence": 0.9, "timestamp": stamp}
    if isinstance(stamp, int):  # no store takes an integer beyond 64 bits now; one an older version wrote
        store._conn.execute('INSERT INTO intentions_audit(doc_key, doc) VALUES (?, ?)', ("i1", json.dumps(event)))
    else:
        store.upsert_many("intentions_audit", [event])
    read = audit_confidences_from_store(store)
    end = datetime(2026, 3, 1, tzinfo=timezone.utc)
    expected = {"i1": 0.9, "i2": 0.8} if counts else {"i2": 0.8}
    assert read(["i1", "i2"], end - timedelta(days=90), end) == expected


@pytest.mark.parametrize("field", ["task", "total"])
def test_the_duration_bound_is_1e15_ms(field):
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def plan(value):
        if field == "task":
            return {"plan_id": "p", "tasks": [{"task_id": "a", "estimated_duration_ms": value}]}
        return {"plan_id": "p", "tasks": [], "estimated_total_duration_ms": value}

    assert d.validate_plan(plan(1e15), now) == []
    assert [p.reason for p in d.validate_plan(plan(2e15), now)] == [d.OUT_OF_RANGE]


@pytest.mark.parametrize("now", [datetime(1700, 3, 1, tzinfo=timezone.utc), "2300-01-01T00:00:00Z",
                                 datetime(2261, 1, 1, tzinfo=timezone.utc)])
def test_collecting_as_of_a_time_whose_window_leaves_the_data_s_times_is_a_clear_error(tmp_path, now):
    """1700-03-01 has a 90-day window that starts in 1699; 2300 and 2261 are times no document holds."""
    store = SQLiteStore(tmp_path / "store.sqlite")
    with pytest.raises(ValueError, match="cannot collect as of .*: a window of 90 days must lie between "
                                         "1700-01-01 and 2260-01-01"):
        collect(store, SPECIALIST, now=now, window_days=90)
    collect(store, SPECIALIST, now=datetime(1700, 4, 1, tzinfo=timezone.utc), window_days=90)  # inside: no error
