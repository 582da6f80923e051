"""`find_by_keys_where` (issue 23): the ids of `keys` that also match `where`, on every store and through
every strategy (FerretDB: point lookups for a few ids, a server `$in`, one narrowed scan for many)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hive_assets.data.store import mongo as mongo_module
from hive_assets.data.store.base import matches
from hive_assets_tests.data.store import any_store  # noqa: F401

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("point_lookups, key_chunk", [(300, 1000), (2, 1000), (2, 5)],
                         ids=["point-lookups", "server-in", "narrowed-scan"])
def test_the_ids_that_match_where(any_store, monkeypatch, point_lookups, key_chunk):
    monkeypatch.setattr(mongo_module, "FERRETDB_POINT_LOOKUPS", point_lookups)
    monkeypatch.setattr(mongo_module, "KEY_CHUNK", key_chunk)
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
