"""One contract for every DocumentStore: the embedded SQLite store and MongoStore on a real FerretDB 1.x.

The pure-Python `matches()` / `run_pipeline()` in base.py are the oracle. Values are compared through
`norm()` (SQLite returns canonical time strings, MongoDB returns datetimes). Test timestamps carry
whole milliseconds: BSON dates have millisecond precision.
"""

from __future__ import annotations

import random
import socket
import traceback
import warnings
from datetime import datetime, timedelta, timezone

import pytest

from hive_assets.data.store import base as store_base
from hive_assets.data.store import mongo as store_mongo
from hive_assets.data.store.base import COLLECTIONS, StoreUnavailable, matches, run_pipeline
from hive_assets_tests.data.store import any_store, mongo_store, norm  # noqa: F401  (fixtures)

C = "specialist_opinions"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SPECIALISTS = ("business", "technical", "behavior", "evolution", "architecture")
RECS = ("approve", "reject", "review_required", "conditional")


def make_opinions(n: int = 60, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        doc = {
            "opinion_id": f"op-{i:03d}",
            "plan_id": f"plan-{i // 3:03d}",
            "intent_id": f"intent-{i // 3:03d}",
            "specialist_type": SPECIALISTS[i % 5],
            "specialist_version": rng.choice([1, 2, 3]),
            # unique, millisecond precision, not in insertion order
            "evaluated_at": T0 + timedelta(hours=rng.randrange(0, 24 * 30), milliseconds=i),
            "opinion": {
                "recommendation": RECS[rng.randrange(4)],
                "confidence_score": round(rng.random(), 4),
                "risk_score": round(rng.random(), 4),
                "reasoning_factors": [{"name": "risk", "weight": 0.5}],
            },
            "tags": ["a", "b"][: i % 3],
            "approved": i % 4 == 0,
        }
        if i % 3 == 0:
            doc["metadata"] = {"ab_test_id": f"ab-{i % 2}", "ab_arm": "champion" if i % 2 else "challenger"}
        if i % 5 == 1:
            doc["note"] = None  # present but null
        elif i % 5 == 2:
            doc["note"] = f"n{i}"
        docs.append(doc)
    return docs


def ids(docs) -> list[str]:
    return [d.get("opinion_id") for d in docs]


FILTERS = [
    {},
    {"specialist_type": "business"},
    {"specialist_type": {"$eq": "technical"}},
    {"specialist_type": {"$ne": "business"}},
    {"specialist_type": {"$in": ["behavior", "evolution"]}},
    {"specialist_type": {"$nin": ["behavior", "evolution"]}},
    {"opinion_id": "op-007"},
    {"opinion_id": {"$in": ["op-001", "op-002", "missing"]}},
    {"opinion.confidence_score": {"$gt": 0.5}},
    {"opinion.confidence_score": {"$gte": 0.25, "$lt": 0.75}},
    {"opinion.confidence_score": {"$lte": 0.1}},
    {"opinion.recommendation": "approve"},
    {"opinion.recommendation": {"$in": ["reject", "review_required"]}},
    {"opinion.recommendation": {"$nin": ["approve"]}},
    {"specialist_version": 2},
    {"specialist_version": {"$gte": 2}},
    {"approved": True},
    {"approved": {"$ne": True}},
    {"metadata.ab_arm": "champion"},
    {"metadata.ab_test_id": {"$exists": True}},
    {"metadata.ab_test_id": {"$exists": False}},
    {"metadata": {"$exists": True}},
    {"note": {"$exists": True}},  # a null value counts as absent
    {"note": {"$exists": False}},
    {"note": None},
    {"note": {"$ne": None}},
    {"note": {"$eq": "n2"}},
    {"evaluated_at": {"$gte": T0 + timedelta(days=10)}},
    {"evaluated_at": {"$gte": T0 + timedelta(days=5), "$lt": T0 + timedelta(days=12)}},
    {"evaluated_at": {"$lt": T0 + timedelta(days=3)}, "specialist_type": "business"},
    {"specialist_type": "technical", "opinion.confidence_score": {"$gte": 0.3}},
    {"$or": [{"specialist_type": "business"}, {"opinion.confidence_score": {"$gt": 0.9}}]},
    {"$and": [{"specialist_type": {"$ne": "business"}}, {"metadata.ab_arm": {"$exists": True}}]},
    {"$or": [{"note": "n7"}, {"$and": [{"specialist_version": 1}, {"approved": True}]}]},
    {"specialist_type": "nobody"},
    # $nor: the complement, where a missing field or a null makes a comparison false (not unknown)
    {"$nor": [{"specialist_type": "business", "evaluated_at": {"$gte": T0 + timedelta(days=5)}}]},
    {"$nor": [{"note": {"$ne": "n2"}}, {"metadata.ab_arm": "control"}]},
    {"$nor": [{"opinion.confidence_score": {"$gt": 0.5}}], "specialist_type": {"$in": ["business", "technical"]}},
    {"$nor": [{"note": "n7"}]},
]


@pytest.fixture
def loaded(any_store):
    docs = make_opinions()
    assert any_store.upsert_many(C, docs) == len(docs)
    return any_store, docs


def test_describe_and_kind(any_store):
    assert any_store.kind in ("sqlite", "mongodb")
    assert isinstance(any_store.describe(), str) and any_store.describe()


def test_upsert_is_idempotent_by_key(any_store):
    docs = make_opinions(20)
    assert any_store.upsert_many(C, docs) == 20
    assert any_store.upsert_many(C, docs) == 20
    assert any_store.count(C) == 20
    changed = dict(docs[5], specialist_type="architecture", opinion={"recommendation": "reject"})
    assert any_store.upsert_many(C, [changed]) == 1
    assert any_store.count(C) == 20
    got = any_store.find_one(C, {"opinion_id": docs[5]["opinion_id"]})
    assert norm(got) == norm(changed)
    assert "_id" not in got
    # the same key twice in one call: the last one wins
    a, b = dict(docs[0], note="first"), dict(docs[0], note="second")
    any_store.upsert_many(C, [a, b])
    assert any_store.find_one(C, {"opinion_id": docs[0]["opinion_id"]})["note"] == "second"
    assert any_store.upsert_many(C, []) == 0


def test_upsert_many_accepts_a_generator_larger_than_a_batch(any_store):
    docs = make_opinions(1200, seed=3)
    for i, d in enumerate(docs):
        d["opinion_id"] = f"big-{i:05d}"
    assert any_store.upsert_many(C, (d for d in docs)) == 1200
    assert any_store.count(C) == 1200
    assert any_store.count(C, {"opinion_id": {"$gte": "big-01000"}}) == 200
    # replacing more than 100 existing documents at once (FerretDB: several bulk commands)
    changed = [dict(d, specialist_type="changed") for d in docs[:130]]
    assert any_store.upsert_many(C, changed) == 130
    assert any_store.count(C) == 1200
    assert any_store.count(C, {"specialist_type": "changed"}) == 130


@pytest.mark.parametrize("insert_new_first", [False, True])
def test_mongo_upsert_strategies(mongo_store, insert_new_first):
    """Both write paths of MongoStore (plain upserts; key lookup + inserts) give the same documents."""
    any_store = mongo_store
    any_store.insert_new_first = insert_new_first
    docs = make_opinions(120)
    # new keys, an existing key, the same key twice in one call, and key-less documents
    any_store.upsert_many(C, docs[:10])
    batch = docs[5:] + [dict(docs[50], note="again"), {"note": "keyless"}, {"note": "keyless"}]
    assert any_store.upsert_many(C, batch) == len(batch)
    assert any_store.count(C) == 122
    assert any_store.find_one(C, {"opinion_id": docs[50]["opinion_id"]})["note"] == "again"
    got = {d["opinion_id"]: d for d in any_store.find(C, {"opinion_id": {"$exists": True}})}
    assert norm(got[docs[7]["opinion_id"]]) == norm(docs[7])


def test_mongo_insert_race_falls_back_to_upsert(mongo_store):
    """A key that appears between the existence lookup and the insert is replaced, not duplicated."""
    any_store = mongo_store
    any_store.insert_new_first = True
    docs = make_opinions(10)
    coll = any_store.db[C]
    any_store.upsert_many(C, docs[:1])
    real_find = coll.find

    class Racing:
        """Pretends no key exists yet, as if another writer inserted them after the lookup."""

        def __getattr__(self, name):
            return getattr(coll, name)

        def find(self, filter=None, *args, **kwargs):
            if filter and "opinion_id" in filter and "$in" in filter["opinion_id"]:
                return iter(())
            return real_find(filter, *args, **kwargs)

    batch = [dict(d, note="second write") for d in docs[:4]]
    any_store._write_batch(Racing(), "opinion_id", batch)
    assert any_store.count(C) == 4
    assert any_store.count(C, {"note": "second write"}) == 4


def test_documents_without_key_are_insertable(any_store):
    any_store.upsert_many(C, make_opinions(5))
    assert any_store.upsert_many(C, [{"note": "keyless-1", "specialist_type": "business"}]) == 1
    assert any_store.upsert_many(C, [{"note": "keyless-2"}]) == 1
    assert any_store.count(C) == 7
    assert any_store.count(C, {"opinion_id": {"$exists": False}}) == 2
    assert sorted(d["note"] for d in any_store.find(C, {"opinion_id": None})) == ["keyless-1", "keyless-2"]
    # keyed documents still upsert normally next to them
    assert any_store.upsert_many(C, make_opinions(5)) == 5
    assert any_store.count(C) == 7


def test_insert_keyless_new_keeps_what_is_stored_under_an_identity(any_store):
    """The mirror's write: an identity already stored is left alone (in a batch larger than the Mongo store's),
    new ones are inserted, and the identities replace nothing of `upsert_keyless`'s contract."""
    first = [(f"t|0|{i}", {"id": f"intent-{i}", "n": 1}) for i in range(1500)]
    assert any_store.insert_keyless_new("intentions_audit_mirror", first) == 1500
    again = [(f"t|0|{i}", {"id": f"intent-{i}", "n": 2}) for i in range(1000, 2500)]
    assert any_store.insert_keyless_new("intentions_audit_mirror", again) == 1500
    assert any_store.count("intentions_audit_mirror") == 2500
    assert any_store.count("intentions_audit_mirror", {"n": 1}) == 1500  # the stored ones kept their content
    assert {d["n"] for d in any_store.find("intentions_audit_mirror", {"id": "intent-2400"})} == {2}
    any_store.upsert_keyless("intentions_audit_mirror", [("t|0|5", {"id": "intent-5", "n": 3})])
    assert [d["n"] for d in any_store.find("intentions_audit_mirror", {"id": "intent-5"})] == [3]


@pytest.mark.parametrize("flt", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
def test_filter_matches_oracle(loaded, flt):
    store, docs = loaded
    expected = sorted(ids(d for d in docs if matches(d, flt)))
    got = list(store.find(C, flt))
    assert sorted(ids(got)) == expected, flt
    assert store.count(C, flt) == len(expected)
    by_id = {d["opinion_id"]: d for d in docs}
    for doc in got:
        assert "_id" not in doc
        assert norm(doc) == norm(by_id[doc["opinion_id"]])


def test_filters_are_not_trivial(loaded):
    """Guard against an oracle that matches everything or nothing: most filters select a strict subset."""
    _, docs = loaded
    sizes = [sum(matches(d, f) for d in docs) for f in FILTERS]
    assert sum(0 < s < len(docs) for s in sizes) >= len(FILTERS) - 3


def test_datetimes_round_trip(loaded):
    store, docs = loaded
    got = store.find_one(C, {"opinion_id": "op-010"})
    want = next(d for d in docs if d["opinion_id"] == "op-010")["evaluated_at"]
    value = got["evaluated_at"]
    if store.kind == "mongodb":
        assert isinstance(value, datetime) and value.tzinfo is not None
        assert value == want
    else:
        assert value == norm(want)
    # a non-UTC aware datetime in a filter means the same instant
    plus2 = timezone(timedelta(hours=2))
    flt = {"evaluated_at": {"$gte": (T0 + timedelta(days=10)).astimezone(plus2)}}
    assert store.count(C, flt) == sum(matches(d, flt) for d in docs)


def test_sort_limit_projection(loaded):
    store, docs = loaded
    got = list(store.find(C, sort=[("evaluated_at", -1)], limit=7, projection=["opinion_id", "evaluated_at"]))
    want = sorted(docs, key=lambda d: d["evaluated_at"], reverse=True)[:7]
    assert ids(got) == ids(want)
    assert all(set(d) == {"opinion_id", "evaluated_at"} for d in got)
    assert [norm(d["evaluated_at"]) for d in got] == [norm(d["evaluated_at"]) for d in want]

    got = list(store.find(C, {"opinion.confidence_score": {"$gt": 0.2}}, sort=[("specialist_type", 1), ("evaluated_at", -1)]))
    want = sorted((d for d in docs if d["opinion"]["confidence_score"] > 0.2), key=lambda d: d["evaluated_at"], reverse=True)
    want = sorted(want, key=lambda d: d["specialist_type"])
    assert ids(got) == ids(want)

    got = list(store.find(C, sort=[("opinion.confidence_score", 1)], limit=3, projection=["opinion_id", "opinion"]))
    want = sorted(docs, key=lambda d: (d["opinion"]["confidence_score"], d["opinion_id"]))[:3]
    assert [d["opinion"]["confidence_score"] for d in got] == [d["opinion"]["confidence_score"] for d in want]
    assert all(set(d) == {"opinion_id", "opinion"} for d in got)

    # a projected field that a document lacks is simply absent
    got = list(store.find(C, {"opinion_id": "op-001"}, projection=["opinion_id", "metadata"]))
    assert got == [{"opinion_id": "op-001"}]
    assert list(store.find(C, limit=0)) == []
    assert len(list(store.find(C, limit=1))) == 1


def test_sort_ties_keep_insertion_order(any_store):
    docs = [{"opinion_id": f"t-{i}", "specialist_type": "same", "n": i} for i in (3, 1, 2, 0)]
    any_store.upsert_many(C, docs)
    assert [d["n"] for d in any_store.find(C, sort=[("specialist_type", 1)])] == [3, 1, 2, 0]
    # newest first: of documents stamped at one instant (a pinned clock), "the latest" is the one written last
    # (`hive status` showed a superseded A/B test over the running one opened at the same simulated instant)
    assert [d["n"] for d in any_store.find(C, sort=[("specialist_type", -1)])] == [0, 2, 1, 3]
    assert any_store.find_one(C, {"specialist_type": "same"}, sort=[("specialist_type", -1)])["n"] == 0
    any_store.upsert_many(C, [{**docs[0], "n": 30}])  # a rewrite keeps its place in the order
    assert [d["n"] for d in any_store.find(C, sort=[("specialist_type", -1)])] == [0, 2, 1, 30]


@pytest.mark.parametrize("key_chunk", [1000, 7])  # one `$in` query; many (and FerretDB's single scan)
def test_find_by_keys_equals_an_in_filter(loaded, monkeypatch, key_chunk):
    store, docs = loaded
    monkeypatch.setattr(store_base, "KEY_CHUNK", key_chunk)
    monkeypatch.setattr(store_mongo, "KEY_CHUNK", key_chunk)
    rng = random.Random(3)
    for field in ("opinion_id", "plan_id"):
        values = sorted({d[field] for d in docs})
        keys = rng.sample(values, len(values) // 2) + ["missing-1", "missing-2"]
        want = sorted(ids(d for d in docs if matches(d, {field: {"$in": keys}})))
        got = list(store.find_by_keys(C, field, keys))
        assert sorted(ids(got)) == want and len(want) > 7
        assert norm(min(got, key=lambda d: d["opinion_id"])) == norm(next(d for d in docs if d["opinion_id"] == want[0]))
        projected = list(store.find_by_keys(C, field, keys, projection=["opinion_id"]))
        assert sorted(ids(projected)) == want and all(set(d) == {"opinion_id"} for d in projected)
    assert list(store.find_by_keys(C, "opinion_id", [])) == []
    with pytest.raises(TypeError, match="string ids"):
        list(store.find_by_keys(C, "opinion_id", ["op-001", 1]))


def test_ferretdb_find_by_keys_scans_once_with_in_semantics(mongo_store, monkeypatch):
    """FerretDB evaluates `$in` on every document: past one chunk the store scans once, and returns
    what the server's own `$in` returns, array values included."""
    assert mongo_store.is_ferretdb
    docs = [{"opinion_id": f"k-{i:02d}", "plan_id": f"p-{i % 9}"} for i in range(40)]
    docs += [{"opinion_id": "arr", "plan_id": ["p-1", "zzz"]}, {"opinion_id": "num", "plan_id": 3},
             {"opinion_id": "none", "plan_id": None}, {"opinion_id": "absent"}]
    mongo_store.upsert_many(C, docs)
    keys = ["p-1", "p-3", "p-5", "3", "None"]
    server = sorted(ids(mongo_store.find(C, {"plan_id": {"$in": keys}})))
    monkeypatch.setattr(store_mongo, "KEY_CHUNK", 2)
    calls = []
    real_find = mongo_store._find  # what `find` and the scan (keeping the join field of a placeholder) call
    monkeypatch.setattr(mongo_store, "_find", lambda *a, **kw: calls.append(a) or real_find(*a, **kw))
    assert sorted(ids(mongo_store.find_by_keys(C, "plan_id", keys))) == server
    assert "arr" in server and "num" not in server and len(server) == 15 and len(calls) == 1


def test_find_one(loaded):
    store, docs = loaded
    newest = store.find_one(C, {"specialist_type": "business"}, sort=[("evaluated_at", -1)])
    want = max((d for d in docs if d["specialist_type"] == "business"), key=lambda d: d["evaluated_at"])
    assert newest["opinion_id"] == want["opinion_id"]
    assert store.find_one(C, {"specialist_type": "nobody"}) is None


def test_delete_many(loaded):
    store, docs = loaded
    gone = [d for d in docs if d["specialist_type"] == "business" and d["approved"]]
    assert gone and store.delete_many(C, {"specialist_type": "business", "approved": True}) == len(gone)
    assert sorted(ids(store.find(C))) == sorted(d["opinion_id"] for d in docs if d not in gone)
    assert store.delete_many(C, {"opinion_id": {"$in": ["op-001", "missing"]}}) == 1
    assert store.delete_many(C, {"opinion_id": "missing"}) == 0 and store.count(C) == len(docs) - len(gone) - 1


def test_update_one(loaded):
    store, docs = loaded
    when = T0 + timedelta(days=40, milliseconds=5)
    n = store.update_one(C, {"opinion_id": "op-004"}, {"status": "reviewed", "opinion.confidence_score": 0.99, "reviewed_at": when,
                                                       "extra.deep.flag": True})
    assert n == 1
    got = store.find_one(C, {"opinion_id": "op-004"})
    before = next(d for d in docs if d["opinion_id"] == "op-004")
    assert got["status"] == "reviewed"
    assert got["opinion"]["confidence_score"] == 0.99
    assert got["opinion"]["recommendation"] == before["opinion"]["recommendation"]  # siblings untouched
    assert norm(got["reviewed_at"]) == norm(when)
    assert got["extra"] == {"deep": {"flag": True}}
    assert store.count(C, {"status": "reviewed"}) == 1
    assert store.count(C, {"reviewed_at": {"$gte": T0 + timedelta(days=39)}}) == 1
    assert store.update_one(C, {"opinion_id": "missing"}, {"status": "x"}) == 0
    # only one document changes even when several match
    assert store.update_one(C, {"specialist_type": "business"}, {"status": "bulk"}) == 1
    assert store.count(C, {"status": "bulk"}) == 1


PIPELINES = [
    [
        {"$match": {"specialist_type": {"$in": ["business", "technical", "behavior"]}}},
        {"$group": {"_id": "$specialist_type", "n": {"$sum": 1}, "best": {"$max": "$opinion.confidence_score"},
                    "worst": {"$min": "$opinion.confidence_score"}, "first": {"$min": "$evaluated_at"},
                    "last": {"$max": "$evaluated_at"}}},
        {"$sort": {"_id": 1}},
    ],
    [{"$match": {"opinion.recommendation": "approve"}}, {"$count": "n"}],
    [{"$match": {"specialist_type": "nobody"}}, {"$count": "n"}],
    [{"$group": {"_id": "$opinion.recommendation", "n": {"$sum": 1}}}, {"$sort": {"n": -1, "_id": 1}}],
    [{"$group": {"_id": "$specialist_version", "n": {"$sum": 1}}}, {"$sort": {"_id": -1}}, {"$limit": 2}],
    [{"$match": {"metadata.ab_arm": {"$exists": True}}},
     {"$group": {"_id": "$metadata.ab_arm", "n": {"$sum": 1}, "versions": {"$sum": "$specialist_version"}}},
     {"$sort": {"_id": 1}}],
    [{"$match": {"evaluated_at": {"$gte": T0 + timedelta(days=7)}}}, {"$sort": {"evaluated_at": 1}}, {"$limit": 4}],
    [{"$match": {"specialist_type": "evolution"}}, {"$group": {"_id": None, "n": {"$sum": 1}}}],
]


@pytest.mark.parametrize("pipeline", PIPELINES, ids=[str(i) for i in range(len(PIPELINES))])
def test_aggregate_matches_oracle(loaded, pipeline):
    store, docs = loaded
    stages = list(pipeline)
    match = stages.pop(0)["$match"] if "$match" in stages[0] else None
    want = run_pipeline((d for d in docs if matches(d, match)), stages)
    got = store.aggregate(C, pipeline)
    assert norm(got) == norm(want)


def test_aggregate_with_float_sums(loaded):
    store, docs = loaded
    got = store.aggregate(C, [{"$group": {"_id": "$specialist_type", "total": {"$sum": "$opinion.confidence_score"}}},
                              {"$sort": {"_id": 1}}])
    want = run_pipeline(docs, [{"$group": {"_id": "$specialist_type", "total": {"$sum": "$opinion.confidence_score"}}},
                               {"$sort": {"_id": 1}}])
    assert [g["_id"] for g in got] == [w["_id"] for w in want]
    for g, w in zip(got, want):
        assert g["total"] == pytest.approx(w["total"])


def test_unknown_collection_is_an_error(any_store):
    with pytest.raises(ValueError):
        any_store.upsert_many("no_such_collection", [{"a": 1}])
    with pytest.raises(ValueError):
        list(any_store.find("no_such_collection"))


def test_every_collection_round_trips(any_store):
    for name, meta in COLLECTIONS.items():
        doc = {meta["key"]: f"{name}-1", "specialist_type": "business", "when": T0}
        for field in meta["indexed"]:  # a dotted field is a nested one (metadata.auto_generated)
            *parents, leaf = field.split(".")
            target = doc
            for part in parents:
                target = target.setdefault(part, {})
            target.setdefault(leaf, "x")
        assert any_store.upsert_many(name, [doc, doc]) == 2
        assert any_store.count(name) == 1
        assert norm(any_store.find_one(name, {meta["key"]: f"{name}-1"})) == norm(doc)


def test_mongo_indexes(mongo_store):
    any_store = mongo_store
    any_store.upsert_many(C, make_opinions(3))
    info = any_store.db[C].index_information()
    keys = {tuple(k for k, _ in spec["key"]): spec for spec in info.values()}
    assert keys[("opinion_id",)].get("unique") is True
    for field in COLLECTIONS[C]["indexed"]:
        assert (field,) in keys
    assert ("specialist_type", "evaluated_at") in keys


# -- connection failures never leak the password ----------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mongo_unavailable_names_host_and_redacts_password():
    from hive_assets.data.store.mongo import MongoStore

    port = _closed_port()
    secret = "s3cr3t-P4ss"
    uri = f"mongodb://hive_user:{secret}@127.0.0.1:{port}/neural_hive?authSource=admin"
    store = MongoStore(uri, timeout_ms=300)
    try:
        assert secret not in store.describe()
        assert "***" in store.describe() and f"127.0.0.1:{port}" in store.describe()
        for call in (
            lambda: store.count(C),
            lambda: list(store.find(C, {"specialist_type": "business"})),
            lambda: store.upsert_many(C, make_opinions(2)),
            lambda: store.update_one(C, {"opinion_id": "x"}, {"a": 1}),
            lambda: store.aggregate(C, [{"$count": "n"}]),
            store.ping,
        ):
            with pytest.raises(StoreUnavailable) as info:
                call()
            text = "".join(traceback.format_exception(info.value))
            assert f"127.0.0.1:{port}" in str(info.value)
            # why, not pymongo's topology description (about 400 characters more, every server's state again)
            assert "Topology Description" not in str(info.value) and len(str(info.value)) < 300, str(info.value)
            assert secret not in text
            assert secret not in repr(info.value)
    finally:
        store.close()


@pytest.mark.parametrize("password", ["Xq7w/Zk9v?Mn4p", "Xq7w?Zk9v", "2024#Xq7w/Zk9v"])
def test_a_password_pymongo_cuts_in_pieces_shows_no_piece_in_the_config_error(password):
    # pymongo cuts the URI at '?' then '/', then quoted the pieces: `Bad database name "Zk9v@Mn4p@127..."`, and
    # warned `Unknown option: zk9v@127.0.0.1...` (in lowercase) on stderr and in the Dagster logs
    from hive_assets.config import ConfigError

    uri = f"mongodb://hive:{password}@127.0.0.1:1/neural_hive?authSource=admin"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError) as info:
            store_mongo.MongoStore(uri, timeout_ms=300)
    text = (str(info.value) + " ".join(str(w.message) for w in caught)).lower()
    assert not any(piece in text for piece in ("2024", "xq7w", "zk9v", "mn4p")), text
    assert str(info.value).startswith("MONGODB_URI is not a usable MongoDB URI (mongodb://hive:***@127.0.0.1:1/")


@pytest.mark.parametrize("password", ["2024?SummerXq7w=1", "2024/SummerXq7w@Zk9v"])
def test_a_cut_password_pymongo_accepts_shows_no_piece_in_warnings_hosts_or_outages(password):
    # `hive:2024?Summer...` reads as host `hive`, port 2024 (the options `Summer...`, or the database
    # `Summer...` after a '/'): pymongo warned with the options' text and its outage named `hive:2024`
    uri = f"mongodb://hive:{password}@127.0.0.1:1/"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = store_mongo.MongoStore(uri, timeout_ms=300)
    try:
        with pytest.raises(StoreUnavailable) as info:
            store.count(C)
        text = " ".join([str(info.value), store.describe(), *(str(w.message) for w in caught)])
        assert not any(piece in text.lower() for piece in ("2024", "summer", "zk9v")), text
        assert str(info.value).startswith("MongoDB at 127.0.0.1:1 (database 'neural_hive') is unavailable: ")
    finally:
        store.close()


def test_a_refused_password_is_an_outage_line_whatever_code_the_server_uses():
    """MongoDB says 18 (AuthenticationFailed); FerretDB 1.x on PostgreSQL says 1 (InternalError) with
    PostgreSQL's words, which was a 60-line traceback. (The text is FerretDB's, recorded against a server whose
    PostgreSQL asks for passwords; the test services trust local connections, so none refuses one.)"""
    from pymongo.errors import OperationFailure

    from hive_assets.data.store.mongo import _auth_failure

    ferretdb = ("[msg_listindexes.go:79 handler.(*Handler).MsgListIndexes] failed SASL auth: FATAL: password "
                "authentication failed for user \"hiveuser\" (SQLSTATE 28P01)")
    assert _auth_failure(OperationFailure(ferretdb, code=1))
    assert _auth_failure(OperationFailure("Authentication failed.", code=18))
    assert not _auth_failure(OperationFailure("E11000 duplicate key error", code=11000))
    assert not _auth_failure(OperationFailure("some other internal error", code=1))


@pytest.mark.services
def test_a_server_s_refusal_of_the_credentials_is_one_line_without_the_password(ferretdb_uri):
    """FerretDB (on SQLite) refuses SCRAM-SHA-1: pymongo's message carried a newline and its ", full error: {...}"
    repeating it, three lines in the CLI."""
    uri = ferretdb_uri.replace("mongodb://", "mongodb://admin:S3cr%40tPw@")
    store = store_mongo.MongoStore(uri, timeout_ms=3000)
    try:
        with pytest.raises(StoreUnavailable) as info:
            store.count(C)
    finally:
        store.close()
    text = str(info.value)
    assert "\n" not in text and "full error" not in text and "S3cr" not in text, text
    assert text.startswith("MongoDB at 127.0.0.1:") and "Unsupported authentication mechanism" in text, text


def test_mongo_unavailable_is_fast():
    import time

    from hive_assets.data.store.mongo import MongoStore

    store = MongoStore(f"mongodb://127.0.0.1:{_closed_port()}/", timeout_ms=500)
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.count(C)
    assert time.monotonic() - t0 < 5
    store.close()


# -- the service fixtures: skip locally, fail under HIVE_REQUIRE_SERVICES=1 --------------------------------
@pytest.mark.parametrize("required", [False, True])
def test_missing_ferretdb_skips_or_fails(tmp_path, required):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    (tmp_path / "conftest.py").write_text("from hive_assets_tests.services import *  # noqa\n")
    (tmp_path / "test_needs_ferretdb.py").write_text("def test_it(ferretdb_uri):\n    assert ferretdb_uri\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIVE_TEST_", "HIVE_REQUIRE", "HIVE_SERVICES"))}
    env.update(PYTHONPATH=str(repo), HIVE_SERVICES_DIR=str(tmp_path / "nothing-installed"))
    if required:
        env["HIVE_REQUIRE_SERVICES"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    if required:
        assert proc.returncode != 0, out
        assert "1 error" in out and "HIVE_REQUIRE_SERVICES=1" in out and "not installed" in out, out
    else:
        assert proc.returncode == 0, out
        assert "1 skipped" in out and "not installed" in out, out
    assert not (tmp_path / "nothing-installed" / "run").exists() or not list((tmp_path / "nothing-installed").rglob("*.pid"))


# -- MongoStore pieces that need no server ----------------------------------------------------------------
def test_translate_filter():
    from hive_assets.data.store.mongo import translate_filter

    assert translate_filter({"a": {"$exists": True}}) == {"a": {"$ne": None}}
    assert translate_filter({"a": {"$exists": False}}) == {"a": {"$eq": None}}
    assert translate_filter({"a": {"$exists": True, "$ne": 3}}) == {"a": {"$ne": None}, "$and": [{"a": {"$ne": 3}}]}
    assert translate_filter({"$or": [{"a.b": {"$exists": 1}}, {"c": 2}]}) == {"$or": [{"a.b": {"$ne": None}}, {"c": 2}]}
    assert translate_filter({"a": {"$gte": 1, "$lt": 5}, "b": "x"}) == {"a": {"$gte": 1, "$lt": 5}, "b": "x"}
    assert translate_filter(None) == {}


def test_server_side_aggregation_subset():
    from hive_assets.data.store.mongo import MongoStore

    multi = [{"$match": {}}, {"$group": {"_id": "$a", "n": {"$sum": 1}, "m": {"$max": "$b"}}}, {"$sort": {"n": -1}}]
    single = [{"$group": {"_id": "$a", "n": {"$sum": 1}}}, {"$sort": {"n": -1}}, {"$limit": 3}]
    assert MongoStore._server_side(multi, ferretdb=False)
    assert not MongoStore._server_side(multi, ferretdb=True)  # FerretDB 1.x: one $sum accumulator only
    assert MongoStore._server_side(single, ferretdb=True)
    assert not MongoStore._server_side([{"$group": {"_id": "$a", "m": {"$min": "$b"}}}], ferretdb=True)
    assert not MongoStore._server_side([{"$project": {"a": 1}}], ferretdb=False)
    assert not MongoStore._server_side([{"$group": {"_id": "$a", "x": {"$avg": "$b"}}}], ferretdb=False)


def test_a_second_store_on_an_existing_database_keeps_working(mongo_store):
    """Every run opens its own store on the same database: index creation must be repeatable."""
    from hive_assets.data.store.mongo import MongoStore

    mongo_store.upsert_many("specialist_opinions", [{"opinion_id": "a", "specialist_type": "business"}])
    with MongoStore(mongo_store.uri, mongo_store.database) as again:
        assert [d["opinion_id"] for d in again.find("specialist_opinions", {"specialist_type": "business"})] == ["a"]
        again.upsert_many("specialist_opinions", [{"opinion_id": "b", "specialist_type": "business"}])
    assert mongo_store.count("specialist_opinions") == 2


def test_a_specialist_s_latest_decision_is_read_through_its_compound_index(tmp_path):
    """`record_decision` and `check_clock` read a specialist's latest ledger row before every decision; with
    the single-field indexes SQLite sorted the specialist's whole ledger for it (10 ms at 50,000 rows, growing
    with the ledger: BENCHMARKS.md). The plan must search the (specialist_type, recorded_at) index, no sort."""
    from hive_assets.data.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "s.sqlite")
    sql, params = store._where("model_decisions", {"specialist_type": "business"})
    order = store._field_sql("model_decisions", "recorded_at")
    plan = " | ".join(row[-1] for row in store._conn.execute(
        f'EXPLAIN QUERY PLAN SELECT doc FROM "model_decisions" WHERE {sql} ORDER BY {order} DESC LIMIT 1', params))
    assert "model_decisions__specialist_type_recorded_at" in plan and "TEMP B-TREE" not in plan, plan
