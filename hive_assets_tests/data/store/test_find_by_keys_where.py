"""`find_by_keys_where` (issue 23): the ids of `keys` that also match `where`, on every store and through
every strategy (FerretDB: point lookups for a few ids, a server `$in`, one narrowed scan for many)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hive_assets.data.store import mongo as mongo_module
from hive_assets.data.store.base import matches
from hive_assets_tests.data.store import any_store, mongo_store  # noqa: F401

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("point_lookups, key_chunk", [(300, 1000), (2, 1000), (2, 5)],
                         ids=["point-lookups", "server-in", "narrowed-scan"])
def test_the_ids_that_match_where(any_store, monkeypatch, point_lookups, key_chunk):
    monkeypatch.setattr(mongo_module, "FERRETDB_POINT_LOOKUPS", point_lookups)
    monkeypatch.setattr(mongo_module, "KEY_CHUNK", key_chunk)
    if isinstance(any_store, mongo_module.MongoStore):
        # the session's FerretDB runs on SQLite, whose backend pushes nothing down (SCAN): point lookups
        # are chosen on PostgreSQL only (test_services_script); here they are forced, for their result
        monkeypatch.setattr(any_store, "lookup_plan", lambda collection, field: mongo_module.PUSHED_DOWN)
    docs = [{"opinion_id": f"o{i}", "specialist_type": ("business", "technical")[i % 2],
             "evaluated_at": T0 + timedelta(hours=i), "opinion": {"recommendation": "approve"}} for i in range(16)]
    any_store.upsert_many("specialist_opinions", docs)
    where = {"specialist_type": "business", "evaluated_at": {"$gte": T0 + timedelta(hours=2), "$lte": T0 + timedelta(hours=12)}}
    keys = [f"o{i}" for i in (0, 1, 2, 3, 4, 6, 8, 12, 13, 14)] + ["missing"]
    got = sorted(d["opinion_id"] for d in any_store.find_by_keys_where("specialist_opinions", "opinion_id", keys, where))
    expected = sorted(d["opinion_id"] for d in docs if d["opinion_id"] in keys and matches(d, where))
    assert got == expected == ["o12", "o2", "o4", "o6", "o8"]
    # no `where`: find_by_keys; a projection keeps only the named fields
    plain = list(any_store.find_by_keys_where("specialist_opinions", "opinion_id", keys[:4], {}, projection=["opinion_id"]))
    assert sorted(d["opinion_id"] for d in plain) == ["o0", "o1", "o2", "o3"] and all(set(d) == {"opinion_id"} for d in plain)
    with pytest.raises(ValueError, match="both the key field and in `where`"):
        list(any_store.find_by_keys_where("specialist_opinions", "opinion_id", keys, {"opinion_id": "o1"}))


def test_on_ferretdb_with_sqlite_the_ids_cost_one_scan_not_one_query_each(mongo_store):
    """FerretDB's SQLite backend pushes no filter down: each equality query is a full scan of the
    collection, so a point lookup per id would cost as many scans as ids (a review queue took ~8 min).
    `explain` says so once per store (`filterPushdown`), and the ids are read by one query."""
    docs = [{"opinion_id": f"o{i:03d}", "specialist_type": ("business", "technical")[i % 2]} for i in range(60)]
    mongo_store.upsert_many("specialist_opinions", docs)
    finds, explains = [], []
    real_find, real_command = mongo_store._find, mongo_store.db.command
    mongo_store._find = lambda *a, **kw: finds.append(a) or real_find(*a, **kw)
    mongo_store.db.command = lambda cmd, *a, **kw: (explains.append(cmd) if "explain" in cmd else None) or \
        real_command(cmd, *a, **kw)
    keys = [f"o{i:03d}" for i in range(0, 60, 3)] + ["missing"]
    assert len(keys) <= mongo_module.FERRETDB_POINT_LOOKUPS  # the ids a PostgreSQL backend would look up one by one
    for _ in range(2):
        got = mongo_store.find_by_keys_where("specialist_opinions", "opinion_id", keys, {"specialist_type": "business"})
        assert sorted(d["opinion_id"] for d in got) == [f"o{i:03d}" for i in range(0, 60, 3) if i % 2 == 0]
    assert mongo_store.lookup_plan("specialist_opinions", "opinion_id") == mongo_module.SCAN
    assert len(finds) == 2 and len(explains) == 1


def test_lookup_indexes_on_ferretdb_with_sqlite_are_refused_with_the_reason(mongo_store):
    """`hive store index` with FERRETDB_POSTGRESQL_URL on FerretDB's SQLite backend: no index can serve a
    backend that pushes nothing down, so it says why instead of reporting 0 indexes (PostgreSQL is not
    contacted: the URL points nowhere)."""
    with pytest.raises(ValueError, match=r"does not push filters down to PostgreSQL \(its SQLite backend\)"):
        mongo_store.ensure_indexes("postgresql://hive@127.0.0.1:9/ferretdb")
