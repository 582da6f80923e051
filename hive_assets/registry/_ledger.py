"""The append-only decision ledger, `model_decisions` (SPEC section 2): every gate verdict, registration,
alias move, promotion, rollback and traffic step, with actor, reason, run id, model version, previous
holder and data snapshot hash.

Rows that move an alias (kinds in ALIAS_KINDS) carry `details.alias` and `details.previous_version`, so
the ledger alone answers "who held `champion` at time T" (see `_history`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from hive_assets import clock
from hive_assets.data.store.base import DocumentStore

#: kinds of rows that move an alias; each has details.alias and details.previous_version
ALIAS_KINDS = ("alias_move", "promotion", "rollback")


def record_decision(store: DocumentStore, specialist: str, kind: str, *, actor: str, reason: str,
                    dagster_run_id: str | None = None, model_version: str | None = None,
                    data_snapshot_hash: str | None = None, details: dict[str, Any] | None = None,
                    decision_id: str | None = None, decided_at: datetime | None = None) -> dict[str, Any]:
    """Append to `model_decisions`. A deterministic `decision_id` makes a retried step write once.

    Stamped with the platform clock (or `decided_at`: an interrupted decision completed later is dated when it
    was taken, as its alias moved then), but never before the specialist's latest row: a host whose clock is a
    little behind (operations refuse more than `CLOCK_SKEW`, `check_clock`) must not put its decision
    before one already made, or the history would show the wrong holder."""
    now = decided_at or clock.now()
    if (latest := latest_decision_at(store, specialist)) is not None and latest > now:
        now = latest
    doc = {
        "decision_id": decision_id or uuid.uuid4().hex,
        "specialist_type": specialist,
        "kind": kind,
        "recorded_at": now,
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


def alias_rows(store: DocumentStore, specialist: str, alias: str) -> list[dict[str, Any]]:
    """The ledger rows that moved `alias` for `specialist`, oldest first."""
    rows = store.find("model_decisions", {"specialist_type": specialist, "kind": {"$in": list(ALIAS_KINDS)},
                                          "details.alias": alias}, sort=[("recorded_at", 1)])
    return list(rows)


def last_alias_row(store: DocumentStore, specialist: str, alias: str) -> dict[str, Any] | None:
    """The latest ledger row that moved `alias` (the ledger's view of who holds it), or None."""
    rows = alias_rows(store, specialist, alias)
    return rows[-1] if rows else None


def latest_gate_verdict(store: DocumentStore, specialist: str, mlflow_run_id: str) -> dict[str, Any] | None:
    """The latest `gate_verdict` row written by validation_report for a training run, or None."""
    return store.find_one("model_decisions", {"specialist_type": specialist, "kind": "gate_verdict",
                                              "details.mlflow_run_id": mlflow_run_id}, sort=[("recorded_at", -1)])


def latest_decision(store: DocumentStore, specialist: str | None = None) -> dict[str, Any] | None:
    """The ledger's latest row, of `specialist` or of any (None: no row)."""
    return store.find_one("model_decisions", {"specialist_type": specialist} if specialist else {},
                          sort=[("recorded_at", -1)])


def latest_decision_at(store: DocumentStore, specialist: str | None = None) -> datetime | None:
    """When the ledger recorded its latest decision, of `specialist` or of any (None: none yet). A clock or a
    simulated start before it would write history out of order."""
    from hive_assets.data import to_utc

    row = latest_decision(store, specialist)
    return to_utc(row.get("recorded_at")) if row else None
