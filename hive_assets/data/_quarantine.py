"""Rejected documents: kept with a reason code and their source id, never lost, never fatal."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from hive_assets.data import _documents as docs
from hive_assets.data.store.base import DocumentStore, dumps

QUARANTINE_COLUMNS = ["source_collection", "source_id", "specialist_type", "reason", "detail", "document"]


class _Quarantine:
    def __init__(self, specialist: str):
        self.specialist = specialist
        self.rows: list[dict[str, Any]] = []
        self.seen: set[tuple[str, str, str]] = set()

    def add(self, collection: str, doc: Any, id_field: str, problems: list[docs.Problem]) -> None:
        source_id = str(doc.get(id_field)) if isinstance(doc, Mapping) and doc.get(id_field) else ""
        first = problems[0]
        key = (collection, source_id, first.reason)
        if key in self.seen and source_id:
            return
        self.seen.add(key)
        self.rows.append({
            "source_collection": collection,
            "source_id": source_id,
            "specialist_type": self.specialist,
            "reason": first.reason,
            "detail": "; ".join(p.detail for p in problems)[:500],
            "document": dumps(doc)[:20000] if isinstance(doc, Mapping) else repr(doc)[:20000],
        })

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=QUARANTINE_COLUMNS)


def persist_quarantine(store: DocumentStore, result: Any, run_id: str | None = None) -> int:
    """Keep the rejected documents of a `CollectResult` in the `quarantine` collection (idempotent per
    source and reason)."""
    docs_out = []
    for row in result.quarantine.to_dict("records"):
        ident = row["source_id"] or hashlib.sha256(row["document"].encode()).hexdigest()[:16]
        docs_out.append({
            "quarantine_id": f"{row['source_collection']}:{ident}:{row['reason']}",
            **row,
            "document": json.loads(row["document"]) if row["document"].startswith("{") else row["document"],
            "run_id": run_id,
            "quarantined_at": datetime.now(timezone.utc),
        })
    return store.upsert_many("quarantine", docs_out) if docs_out else 0
