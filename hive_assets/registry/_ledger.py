"""The append-only decision ledger, `model_decisions` (SPEC section 2): every gate verdict, registration,
alias move, traffic step and rollback, with actor, reason, run id, model version and data snapshot hash."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from hive_assets.data.store.base import DocumentStore


def record_decision(store: DocumentStore, specialist: str, kind: str, *, actor: str, reason: str,
                    dagster_run_id: str | None = None, model_version: str | None = None,
                    data_snapshot_hash: str | None = None, details: dict[str, Any] | None = None,
                    decision_id: str | None = None) -> dict[str, Any]:
    """Append to `model_decisions`. A deterministic `decision_id` makes a retried step write once."""
    doc = {
        "decision_id": decision_id or uuid.uuid4().hex,
        "specialist_type": specialist,
        "kind": kind,
        "recorded_at": datetime.now(timezone.utc),
        "actor": actor,
        "reason": reason,
        "dagster_run_id": dagster_run_id,
        "model_version": model_version,
        "data_snapshot_hash": data_snapshot_hash,
        "details": details or {},
    }
    if decision_id and store.count("model_decisions", {"decision_id": decision_id}):
        return store.find_one("model_decisions", {"decision_id": decision_id}) or doc
    store.upsert_many("model_decisions", [doc])
    return doc
