"""Document stores: the embedded SQLite store, or MongoDB/FerretDB when MONGODB_URI is set."""

from __future__ import annotations

from hive_assets.config import Settings
from hive_assets.data.store.base import COLLECTIONS, DocumentStore, StoreUnavailable, canonical_time
from hive_assets.data.store.sqlite import SQLiteStore


def open_store(settings: Settings | None = None) -> DocumentStore:
    settings = settings or Settings.from_env()
    if settings.mongodb_uri:
        from hive_assets.data.store.mongo import MongoStore  # pymongo only when asked for

        return MongoStore(settings.mongodb_uri, settings.mongodb_database)
    return SQLiteStore(settings.store_path)


__all__ = ["COLLECTIONS", "DocumentStore", "SQLiteStore", "StoreUnavailable", "canonical_time", "open_store"]
