"""mongoexport JSON-lines import into both stores (SQLite and MongoStore on a real FerretDB)."""

from __future__ import annotations

import gzip
import json
import math
from datetime import datetime, timezone

import pytest

from hive_assets.data.store.importer import decode_line, import_jsonl, main, parse_iso_datetime
from hive_assets_tests.data.store import any_store, norm  # noqa: F401  (fixture)

C = "specialist_opinions"

CANONICAL = {  # mongoexport --jsonFormat=canonical
    "_id": {"$oid": "65a1b2c3d4e5f60718293a4b"},
    "opinion_id": "op-canonical",
    "plan_id": "plan-1",
    "specialist_type": "business",
    "evaluated_at": {"$date": {"$numberLong": "1767323045123"}},  # 2026-01-02T03:04:05.123Z
    "specialist_version": {"$numberInt": "3"},
    "opinion": {
        "recommendation": "approve",
        "confidence_score": {"$numberDouble": "0.75"},
        "risk_score": {"$numberDecimal": "0.125"},
        "reasoning_factors": [{"name": "risk", "weight": {"$numberDouble": "0.5"}}],
    },
    "tokens": {"$numberLong": "9007199254740993"},
    "plan_ref": {"$oid": "65a1b2c3d4e5f60718293a4c"},
}
RELAXED = {  # mongoexport default (relaxed)
    "_id": {"$oid": "65a1b2c3d4e5f60718293a4d"},
    "opinion_id": "op-relaxed",
    "plan_id": "plan-2",
    "specialist_type": "technical",
    "evaluated_at": {"$date": "2026-01-02T03:04:05.123Z"},
    "specialist_version": 2,
    "opinion": {"recommendation": "reject", "confidence_score": 0.5, "risk_score": 0.25},
    "metadata": {"ab_test_id": "ab-1", "ab_arm": "challenger", "auto_generated": True},
}
OFFSET = {  # an ISO date with an offset, and the legacy number form
    "opinion_id": "op-offset",
    "specialist_type": "behavior",
    "evaluated_at": {"$date": "2026-01-02T05:04:05.123+02:00"},
    "first_seen": {"$date": 1767323045123},
    "specialist_version": 1,
}
EXPECTED_TIME = datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=timezone.utc)


def write_fixture(path):
    lines = [
        json.dumps(CANONICAL),
        json.dumps(RELAXED),
        "",  # blank: skipped, not counted
        "this is not JSON {",
        json.dumps(OFFSET),
        '{"opinion_id": "op-truncated", "specialist_type": ',
        "[1, 2, 3]",
        json.dumps({"opinion_id": "op-bad-date", "evaluated_at": {"$date": "yesterday-ish"}}),
        json.dumps({"note": "no key at all", "specialist_type": "evolution"}),
        json.dumps(dict(RELAXED, _id={"$oid": "65a1b2c3d4e5f60718293a4e"}, specialist_version=5)),  # same key again
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_import_both_stores(any_store, tmp_path):
    path = write_fixture(tmp_path / "opinions.jsonl")
    result = import_jsonl(any_store, C, path, batch_size=2)
    assert result["read"] == 9
    assert result["bad_lines"] == 4
    assert result["written"] == 4  # the store holds 4: the last line repeats a key (the later one is kept)
    assert result["duplicate_lines"] == 1
    assert result["missing_key"] == 1
    assert [e["line"] for e in result["errors"]] == [4, 6, 7, 8]
    assert all(isinstance(e["error"], str) and e["error"] for e in result["errors"])
    assert "yesterday-ish" in result["errors"][3]["error"]

    assert any_store.count(C) == 4  # op-relaxed twice: upserted by key
    docs = {d.get("opinion_id"): d for d in any_store.find(C)}
    assert set(docs) == {"op-canonical", "op-relaxed", "op-offset", None}
    assert all("_id" not in d for d in docs.values())

    canonical = docs["op-canonical"]
    assert norm(canonical["evaluated_at"]) == norm(EXPECTED_TIME)
    assert canonical["specialist_version"] == 3 and isinstance(canonical["specialist_version"], int)
    assert canonical["opinion"]["confidence_score"] == 0.75
    assert canonical["opinion"]["risk_score"] == 0.125
    assert canonical["opinion"]["reasoning_factors"] == [{"name": "risk", "weight": 0.5}]
    assert canonical["tokens"] == 9007199254740993  # exact: int64, not a float
    assert canonical["plan_ref"] == "65a1b2c3d4e5f60718293a4c"

    relaxed = docs["op-relaxed"]
    assert relaxed["specialist_version"] == 5  # the later line won
    assert norm(relaxed["evaluated_at"]) == norm(EXPECTED_TIME)
    assert relaxed["metadata"]["auto_generated"] is True

    offset = docs["op-offset"]
    assert norm(offset["evaluated_at"]) == norm(EXPECTED_TIME)
    assert norm(offset["first_seen"]) == norm(EXPECTED_TIME)
    if any_store.kind == "mongodb":
        assert isinstance(offset["evaluated_at"], datetime) and offset["evaluated_at"].tzinfo is not None

    # imported timestamps are real timestamps: range queries work in both stores
    assert any_store.count(C, {"evaluated_at": {"$gte": datetime(2026, 1, 2, tzinfo=timezone.utc)}}) == 3
    assert any_store.count(C, {"evaluated_at": {"$gt": EXPECTED_TIME}}) == 0

    # importing the same file again changes nothing, the key-less line included (it has no `_id`: its
    # content is its identity)
    again = import_jsonl(any_store, C, path)
    assert (again["written"], again["duplicate_lines"], again["bad_lines"], again["missing_key"]) == (4, 1, 4, 1)
    assert any_store.count(C) == 4
    assert any_store.count(C, {"opinion_id": {"$exists": True}}) == 3


def test_key_less_documents_are_kept_once_per_source_id(any_store, tmp_path):
    """mongoexport lines without the collection's key: each source `_id` is one document however often the
    export is imported, a later export of the same `_id` replaces it, and two lines with the same content
    but their own `_id`s stay two documents (the source had two). Lines without `_id` count once by content."""
    def line(oid, **fields):
        return json.dumps({**({"_id": {"$oid": oid}} if oid else {}), "specialist_type": "evolution", **fields})

    first = tmp_path / "first.jsonl"
    first.write_text("\n".join([line("65a1b2c3d4e5f60718290001", note="a"),
                                line("65a1b2c3d4e5f60718290002", note="a"),
                                line(None, note="no id"), line(None, note="no id"),
                                line("65a1b2c3d4e5f60718290003", opinion_id="op-keyed")]) + "\n")
    for _ in range(3):
        result = import_jsonl(any_store, C, first, batch_size=2)
        assert result["missing_key"] == 4 and result["bad_lines"] == 0
        assert any_store.count(C) == 4  # two by _id, one by content, one keyed
    later = tmp_path / "later.jsonl"
    later.write_text(line("65a1b2c3d4e5f60718290001", note="edited") + "\n")
    import_jsonl(any_store, C, later)
    notes = sorted(d.get("note", "") for d in any_store.find(C))
    assert notes == ["", "a", "edited", "no id"]
    assert all("_id" not in d for d in any_store.find(C))


def test_import_gzip_and_large_batches(any_store, tmp_path):
    path = tmp_path / "feedback.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        for i in range(2500):
            fh.write(json.dumps({
                "_id": {"$oid": f"{i:024x}"},
                "feedback_id": f"fb-{i:05d}",
                "opinion_id": f"op-{i:05d}",
                "specialist_type": "business",
                "human_rating": {"$numberDouble": str(i / 2500)},
                "submitted_at": {"$date": {"$numberLong": str(1767225600000 + i * 1000)}},
            }) + "\n")
            if i % 1000 == 999:
                fh.write("garbage\n")
    result = import_jsonl(any_store, "specialist_feedback", path)
    assert result == {"read": 2502, "written": 2500, "duplicate_lines": 0, "bad_lines": 2, "missing_key": 0,
                      "errors": result["errors"]}
    assert [e["line"] for e in result["errors"]] == [1001, 2002]
    assert any_store.count("specialist_feedback") == 2500
    newest = any_store.find_one("specialist_feedback", sort=[("submitted_at", -1)])
    assert newest["feedback_id"] == "fb-02499"


def test_errors_list_is_capped(any_store, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("nope\n" * 50 + json.dumps({"opinion_id": "ok"}) + "\n")
    result = import_jsonl(any_store, C, path)
    assert result["bad_lines"] == 50 and result["written"] == 1
    assert len(result["errors"]) == 20


def nested(levels: int) -> str:
    return '{"v": ' * levels + "1" + "}" * levels


def test_hostile_lines_are_bad_lines_and_the_rest_of_their_batch_is_written(tmp_path):
    """Each line here once broke the import (a traceback, its whole batch lost) or merged two documents: a
    document nested deeper than the store's JSON encoders go (orjson stops at 255 levels, the fallback at
    Python's recursion limit), a malformed `$timestamp`, and bytes that are not UTF-8 (replaced by U+FFFD
    they made two keys one). Each is now one bad line; everything else in the batch is written; an empty key
    counts as missing (it merged documents too); a byte-order mark is skipped."""
    from hive_assets.data.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "s.sqlite")
    lines = [
        "\ufeff" + json.dumps({"feedback_id": "fb-bom"}),
        json.dumps({"feedback_id": "fb-ok-1"}),
        '{"feedback_id": "fb-deep", "x": ' + nested(600) + "}",  # decodes, cannot be stored
        json.dumps({"feedback_id": "fb-200-deep", "x": json.loads(nested(200))}),  # orjson stores it
        '{"feedback_id": "fb-ts", "submitted_at": {"$timestamp": {"t": [1], "i": 1}}}',
        json.dumps({"feedback_id": "", "_id": {"$oid": "65a1b2c3d4e5f60718290001"}, "v": 1}),
        json.dumps({"feedback_id": "", "_id": {"$oid": "65a1b2c3d4e5f60718290002"}, "v": 2}),
        json.dumps({"feedback_id": "fb-ok-2"}),
    ]
    raw = "\n".join(lines).encode() + b'\n{"feedback_id": "u-ab\xffcd", "v": 1}\n{"feedback_id": "u-ab\xfecd", "v": 2}\n'
    path = tmp_path / "feedback.jsonl"
    path.write_bytes(raw)
    result = import_jsonl(store, "specialist_feedback", path, batch_size=100)
    assert result["read"] == 10 and result["bad_lines"] == 4 and result["missing_key"] == 2
    assert sorted(e["line"] for e in result["errors"]) == [3, 5, 9, 10]
    errors = {e["line"]: e["error"] for e in result["errors"]}
    assert "nested too deep to store" in errors[3] and "$timestamp expects integer seconds" in errors[5]
    assert "not UTF-8: byte 0xff at column 22" in errors[9] and "byte 0xfe" in errors[10]
    keys = sorted(str(d.get("feedback_id")) for d in store.find("specialist_feedback"))
    assert keys == ["", "", "fb-200-deep", "fb-bom", "fb-ok-1", "fb-ok-2"]  # the two empty keys: two documents
    assert result["written"] == 6


TRUNCATED_GZIP = gzip.compress("".join(json.dumps({"feedback_id": f"fb-{i}", "h": i * 7919 % 1000003}) + "\n"
                                       for i in range(5000)).encode(), mtime=0)[:6000]


@pytest.mark.parametrize("content", [b"this is plain text, not gzip\n", TRUNCATED_GZIP])
def test_an_unreadable_gzip_is_one_line_and_keeps_what_was_read(tmp_path, monkeypatch, capsys, content):
    from hive_assets.cli._main import main as hive

    monkeypatch.setenv("HIVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    for name in ("MONGODB_URI", "MLFLOW_TRACKING_URI", "HIVE_ENV"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "feedback.jsonl.gz"
    path.write_bytes(content)
    assert hive(["store", "import", "--collection", "specialist_feedback", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"hive store import: error: {path}: unreadable after line" in err and "Traceback" not in err
    from hive_assets.data.store.sqlite import SQLiteStore

    written = SQLiteStore(tmp_path / "home" / "store.sqlite").count("specialist_feedback")
    assert written == (0 if content.startswith(b"this") else int(err.split(" document(s) written")[0].split()[-1]))
    assert content.startswith(b"this") or 0 < written < 5000  # the lines read before the cut are kept
    # with --json, stdout is a JSON document too (it printed nothing there)
    assert hive(["store", "import", "--collection", "specialist_feedback", str(path), "--json"]) == 1
    said = json.loads(capsys.readouterr().out)
    assert said["written"] == written and said["unreadable"].startswith(f"{path}: unreadable after line")


def test_unknown_collection_fails_before_reading(tmp_path):
    from hive_assets.data.store.sqlite import SQLiteStore

    with pytest.raises(ValueError):
        import_jsonl(SQLiteStore(tmp_path / "s.sqlite"), "nope", tmp_path / "missing.jsonl")


# -- the decoder alone --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "wrapper, expected",
    [
        ({"$oid": "65a1b2c3d4e5f60718293a4b"}, "65a1b2c3d4e5f60718293a4b"),
        ({"$numberLong": "-42"}, -42),
        ({"$numberInt": "7"}, 7),
        ({"$numberDouble": "1.5"}, 1.5),
        ({"$numberDouble": "-Infinity"}, float("-inf")),
        ({"$numberDecimal": "1.10"}, 1.1),
        ({"$date": "2026-01-02T03:04:05Z"}, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ({"$date": "2026-01-02T03:04:05.5+00:00"}, datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=timezone.utc)),
        ({"$date": "2026-01-02T03:04:05"}, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),  # naive = UTC
        ({"$date": {"$numberLong": "-1000"}}, datetime(1969, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
        ({"$date": 0}, datetime(1970, 1, 1, tzinfo=timezone.utc)),
        ({"$timestamp": {"t": 1767323045, "i": 1}}, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ({"$undefined": True}, None),
        ({"$binary": {"base64": "AA==", "subType": "00"}}, {"$binary": {"base64": "AA==", "subType": "00"}}),
        ({"plain": {"$numberInt": "1"}}, {"plain": 1}),
    ],
)
def test_decode_wrappers(wrapper, expected):
    doc = decode_line(json.dumps({"v": wrapper}))
    got = doc["v"]
    if isinstance(expected, float) and math.isinf(expected):
        assert math.isinf(got) and got < 0
    else:
        assert got == expected
    if isinstance(got, datetime):
        assert got.tzinfo is not None and got.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("line", ["", "{", "[]", "42", '"text"', '{"v": {"$numberLong": "x"}}', '{"v": {"$date": "soon"}}',
                                  '{"v": {"$oid": 5}}', '{"v": {"$timestamp": {"t": [1], "i": 1}}}',
                                  '{"v": {"$timestamp": {"t": null, "i": 1}}}'])
def test_decode_rejects(line):
    with pytest.raises(ValueError):
        decode_line(line)


def test_decode_drops_top_level_id_only():
    doc = decode_line('{"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "nested": {"_id": 1}}')
    assert doc == {"nested": {"_id": 1}}


def test_parse_iso_datetime_converts_to_utc():
    assert parse_iso_datetime("2026-01-02T05:04:05+02:00") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_cli_imports_into_the_embedded_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HIVE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MONGODB_URI", raising=False)
    path = write_fixture(tmp_path / "opinions.jsonl")
    assert main([C, str(path)]) == 1  # bad lines make the exit status non-zero
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["written"], out["duplicate_lines"], out["bad_lines"]) == (4, 1, 4)

    from hive_assets.data.store.sqlite import SQLiteStore

    assert SQLiteStore(tmp_path / "home" / "store.sqlite").count(C) == 4


def test_written_is_what_the_store_holds_and_a_repeated_key_is_a_duplicate_line(any_store, tmp_path):  # noqa: F811
    """56 lines, one feedback_id twice (in another batch): 55 documents, the later line's; again: the same."""
    lines = [{"feedback_id": f"fb-{i}", "opinion_id": f"op-{i}", "human_rating": 0.5} for i in range(55)]
    lines.append({**lines[3], "human_rating": 0.9})
    lines.append({"note": "no key", "_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}})
    lines.append({"note": "no key, again", "_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}})  # same source _id
    path = tmp_path / "feedback.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    for _ in range(2):
        result = import_jsonl(any_store, "specialist_feedback", path, batch_size=10)
        assert (result["read"], result["written"], result["duplicate_lines"], result["missing_key"]) == (58, 56, 2, 2)
        assert any_store.count("specialist_feedback") == result["written"]
    assert any_store.find_one("specialist_feedback", {"feedback_id": "fb-3"})["human_rating"] == 0.9


def test_keys_of_other_json_types_are_other_documents_as_in_mongodb(any_store, tmp_path):  # noqa: F811
    """MongoDB's unique index: 5 and "5" differ, true and "True" differ, 5 and 5.0 are one key."""
    ids = [5, "5", True, "True", 1, 5.0, {"a": 1}, [1, 2]]
    path = tmp_path / "opinions.jsonl"
    path.write_text("".join(json.dumps({"opinion_id": i, "line": n}) + "\n" for n, i in enumerate(ids, start=1)))
    result = import_jsonl(any_store, C, path)
    assert (result["written"], result["duplicate_lines"], result["bad_lines"]) == (7, 1, 0)
    assert any_store.count(C) == 7
    line_of = {json.dumps(d["opinion_id"]): d["line"] for d in any_store.find(C)}
    assert line_of == {"5.0": 6, '"5"': 2, "true": 3, '"True"': 4, "1": 5, '{"a": 1}': 7, "[1, 2]": 8}
    # the platform's reads by id (text) find the text keys only
    assert [d["line"] for d in any_store.find(C, {"opinion_id": "5"})] == [2]
    assert [d["line"] for d in any_store.find(C, {"opinion_id": {"$in": ["True", "1"]}})] == [4]
    assert [d["line"] for d in any_store.find(C, {"opinion_id": True})] == [3]


def test_an_integer_beyond_64_bits_is_a_bad_line_on_both_stores(any_store, tmp_path):  # noqa: F811
    """BSON integers are 64-bit: MongoDB refuses such a document (the import stopped on its OverflowError,
    writing nothing); the SQLite store stored its JSON text, read back as the float 1e+30. Both refuse it."""
    from hive_assets.data.store.base import UnstorableDocument

    values = [1, 10**30, 2**64, -(2**63) - 1, 2**63 - 1]
    path = tmp_path / "ledger.jsonl"
    path.write_text("".join(json.dumps({"plan_id": f"p{n}", "plan_data": {"tasks": [], "v": v}}) + "\n"
                            for n, v in enumerate(values, start=1)))
    result = import_jsonl(any_store, "cognitive_ledger", path)
    assert (result["written"], result["bad_lines"]) == (2, 3)
    assert [e["line"] for e in result["errors"]] == [2, 3, 4]
    assert all("beyond 64 bits" in e["error"] for e in result["errors"])
    assert {d["plan_id"]: d["plan_data"]["v"] for d in any_store.find("cognitive_ledger")} == {
        "p1": 1, "p5": 2**63 - 1}
    with pytest.raises(UnstorableDocument, match="beyond 64 bits"):
        any_store.upsert_many("cognitive_plans", [{"plan_id": "x", "v": [{"w": 10**30}]}])


def test_a_lone_surrogate_is_a_bad_line_on_both_stores(any_store, tmp_path):  # noqa: F811
    """`"\\ud800"` is valid JSON and no text: in a key it failed the SQLite write with a UnicodeEncodeError (a
    traceback from `hive store import`, its whole batch lost), anywhere in a document MongoDB's encoder.
    Both stores refuse such a document; the import reports its line and writes the rest."""
    from hive_assets.data.store.base import UnstorableDocument

    path = tmp_path / "opinions.jsonl"
    path.write_text('{"opinion_id": "\\ud800x"}\n{"opinion_id": "before"}\n'
                    '{"opinion_id": "in-body", "note": ["ok", "\\udfff"]}\n{"opinion_id": "after"}\n')
    result = import_jsonl(any_store, "specialist_opinions", path)
    assert (result["read"], result["written"], result["bad_lines"]) == (4, 2, 2)
    assert [e["line"] for e in result["errors"]] == [1, 3]
    assert all("not UTF-8 (a lone surrogate" in e["error"] for e in result["errors"])
    assert sorted(d["opinion_id"] for d in any_store.find("specialist_opinions")) == ["after", "before"]
    with pytest.raises(UnstorableDocument, match="lone surrogate"):
        any_store.upsert_many("specialist_opinions", [{"opinion_id": "x", "t": "\ud800"}])


@pytest.mark.parametrize("name", ["validation_report.macro_f1", "$where", "a\x00b", "a.b\\c", "q\"x.y"])
def test_a_field_name_a_mongodb_store_refuses_is_refused_alike_on_both_stores(any_store, tmp_path, name):  # noqa: F811
    """FerretDB refuses a field name with a '.', a leading '$' or a NUL: a retraining trigger with metrics named
    "<asset>.<name>" stayed unwritten in production, while every test on the SQLite store passed. Both stores
    refuse such a document now, nested or not, before anything of the batch is written; an import reports the
    line; the quarantine keeps such a document as text."""
    from hive_assets.data._quarantine import stored_form
    from hive_assets.data.store.base import UnstorableDocument
    from hive_assets.data.store.mongo import MongoStore

    if isinstance(any_store, MongoStore):  # the rule is the real service's (the store checks before sending)
        with pytest.raises(Exception) as refused:
            any_store._coll("refusals").insert_one({"nested": [{name: 1}]})
        assert not isinstance(refused.value, AssertionError)
    bad = {"trigger_id": "t-bad", "metrics": {"rows": [{name: 0.81}]}}
    with pytest.raises(UnstorableDocument, match="has a field name a MongoDB store refuses"):
        any_store.upsert_many("retraining_triggers", [{"trigger_id": "t-good"}, bad])
    with pytest.raises(UnstorableDocument):
        any_store.insert_new("retraining_triggers", bad)
    with pytest.raises(UnstorableDocument):
        any_store.update_one("retraining_triggers", {"trigger_id": "t-good"}, {"metrics": {name: 1}})
    assert any_store.count("retraining_triggers") == 0
    # a value that only looks like one is stored: a dot in a value, '$' at the start of a value in a list
    fine = {"trigger_id": "t-fine", "note": "v1.2\":", "list": ["$x", "a.b"], "n": 1.5}
    any_store.upsert_many("retraining_triggers", [fine])
    assert any_store.find_one("retraining_triggers", {"trigger_id": "t-fine"})["list"] == ["$x", "a.b"]
    path = tmp_path / "plans.jsonl"
    path.write_text(json.dumps({"plan_id": "p1", "tasks": []}) + "\n"
                    + json.dumps({"plan_id": "p2", "tasks": [{name: 1}]}) + "\n")
    result = import_jsonl(any_store, "cognitive_plans", path)
    assert (result["written"], result["bad_lines"], [e["line"] for e in result["errors"]]) == (1, 1, [2])
    kept, _, _ = stored_form({"plan_id": "p2", "tasks": [{name: 1}]})
    assert kept == repr({"plan_id": "p2", "tasks": [{name: 1}]})  # as text, the form a value no store holds takes
