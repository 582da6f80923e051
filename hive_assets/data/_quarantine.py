"""Rejected documents: kept with a reason code and their source id, never lost, never fatal.

A quarantined document is kept whole when its JSON text is at most `MAX_STORED_DOCUMENT_CHARS`
(far below MongoDB's 16 MB document limit, so the write cannot fail on size). A larger one is kept as
a bounded summary (size, SHA-256 of its JSON text, top-level fields, a text preview) next to its source
id, which is where the whole document still lives. Either way the value is an object ready to write:
nothing is ever cut and parsed again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import pandas as pd

from hive_assets import clock
from hive_assets.data import _documents as docs
from hive_assets.data.store.base import DocumentStore, UnstorableDocument, dumps, refuse_unstorable_names

QUARANTINE_COLUMNS = [
    "source_collection", "source_id", "specialist_type", "reason", "detail", "document", "document_chars",
    "document_sha256",
]
MAX_STORED_DOCUMENT_CHARS = 1_000_000
PREVIEW_CHARS = 2_000
MAX_DETAIL_CHARS = 500


def stored_form(doc: Any) -> tuple[Any, int, str]:
    """(what the quarantine keeps of `doc`, length of its JSON text, SHA-256 of that text).

    Containers deeper than `MAX_DEPTH` are cut and lone surrogates escaped first (`safe_copy`). A mapping
    up to MAX_STORED_DOCUMENT_CHARS is kept as it is; anything else (a mapping holding a value JSON cannot
    carry too) becomes text (`repr`) or,
    when larger, a summary `{"oversized_document": True, "chars", "sha256", "top_level_fields", "preview"}`.
    """
    # a hostile document (too deep, lone surrogates) is kept as its `safe_copy`, which any writer and
    # pickle accept; the copy of a sane document equals it
    doc = docs.safe_copy(doc)
    whole = isinstance(doc, Mapping)
    if whole:
        try:
            text = dumps(doc)
            refuse_unstorable_names(doc, text)  # a field name no MongoDB store takes: kept as text too
        except (TypeError, UnstorableDocument):  # a value no store holds (bytes, an integer beyond 64 bits): as text
            whole = False
    if not whole:
        text = repr(doc)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    if len(text) <= MAX_STORED_DOCUMENT_CHARS:
        return (doc if whole else text), len(text), digest
    summary = {
        "oversized_document": True,
        "chars": len(text),
        "sha256": digest,
        "top_level_fields": sorted(str(k) for k in doc)[:100] if isinstance(doc, Mapping) else [],
        "preview": text[:PREVIEW_CHARS],
    }
    return summary, len(text), digest


class _Quarantine:
    def __init__(self, specialist: str):
        self.specialist = specialist
        self.rows: list[dict[str, Any]] = []
        self.seen: set[tuple[str, str, str]] = set()

    def add(self, collection: str, doc: Any, id_field: str, problems: list[docs.Problem]) -> None:
        source_id = docs.safe_text(str(doc.get(id_field))) if isinstance(doc, Mapping) and doc.get(id_field) else ""
        first = problems[0]
        key = (collection, source_id, first.reason)
        if key in self.seen and source_id:
            return
        self.seen.add(key)
        stored, chars, digest = stored_form(doc)
        self.rows.append({
            "source_collection": collection,
            "source_id": source_id,
            "specialist_type": self.specialist,
            "reason": first.reason,
            "detail": docs.safe_text("; ".join(p.detail for p in problems)[:MAX_DETAIL_CHARS]),
            "document": stored,
            "document_chars": chars,
            "document_sha256": digest,
        })

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=QUARANTINE_COLUMNS)


QUARANTINED = "quarantined"
RELEASED = "released"


def persist_quarantine(store: DocumentStore, result: Any, run_id: str | None = None) -> int:
    """Keep the rejected documents of a `CollectResult` in the `quarantine` collection, as what the
    specialist's latest collection quarantined. Returns how many it wrote.

    One entry per specialist, source document and reason (`quarantine_id`
    `<specialist>:<collection>:<source id>:<reason>`; a document without a source id: the hash of its
    content): a plan that several specialists' collections read is quarantined under each. An entry this
    collection wrote has `status: "quarantined"` and its `run_id`; an entry of the same specialist that it no
    longer quarantined (the document fixed or replaced, or no longer read) becomes `status: "released"` with
    `released_by_run_id` and `released_at`, so the history stays and an open entry is always current.
    Idempotent: the same result again changes nothing but the times."""
    specialist = result.specialist
    now = clock.now()
    docs_out = []
    for row in result.quarantine.to_dict("records"):
        ident = row["source_id"] or row["document_sha256"][:16]
        docs_out.append({
            "quarantine_id": f"{specialist}:{row['source_collection']}:{ident}:{row['reason']}",
            **row,
            "status": QUARANTINED,
            "run_id": run_id,
            "quarantined_at": now,
        })
    written = store.upsert_many("quarantine", docs_out) if docs_out else 0
    current = {doc["quarantine_id"] for doc in docs_out}
    # entries written before they carried the specialist in their id (and a status) were overwritten by
    # whichever specialist ran last: this collection's entries replace them
    store.delete_many("quarantine", {"specialist_type": specialist, "status": None})
    for open_entry in store.find("quarantine", {"specialist_type": specialist, "status": QUARANTINED},
                                 projection=["quarantine_id"]):
        if open_entry.get("quarantine_id") not in current:
            store.update_one("quarantine", {"quarantine_id": open_entry["quarantine_id"], "status": QUARANTINED},
                             {"status": RELEASED, "released_by_run_id": run_id, "released_at": now})
    return written
