"""Document-store tests. `any_store` runs a test once on each implementation:

* `sqlite`  - SQLiteStore in the test's tmp_path;
* `mongodb` - MongoStore on the session's real FerretDB (`ferretdb_uri`), in a database of its own
  that is dropped afterwards.

`mongo_store` is the second one alone. Import them into a test module:
`from hive_assets_tests.data.store import any_store, mongo_store  # noqa: F401`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from hive_assets.data.store.base import canonical_time
from hive_assets.data.store.sqlite import SQLiteStore


def _mongo_store(uri: str):
    from hive_assets.data.store.mongo import MongoStore

    database = f"hive_test_{uuid.uuid4().hex[:12]}"
    store = MongoStore(uri, database, timeout_ms=10_000)
    try:
        yield store
    finally:
        try:
            store.client.drop_database(database)
        finally:
            store.close()


@pytest.fixture(params=["sqlite", "mongodb"])
def any_store(request, tmp_path):
    if request.param == "sqlite":
        store = SQLiteStore(tmp_path / "store.sqlite")
        yield store
        store.close()
        return
    yield from _mongo_store(request.getfixturevalue("ferretdb_uri"))


@pytest.fixture
def mongo_store(ferretdb_uri):
    """MongoStore alone, for what only the MongoDB implementation has (indexes, write strategies)."""
    yield from _mongo_store(ferretdb_uri)


def norm(value: Any) -> Any:
    """Store-independent form: datetimes (Mongo) and canonical strings (SQLite) compare equal."""
    if isinstance(value, datetime):
        return canonical_time(value)
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [norm(v) for v in value]
    return value
