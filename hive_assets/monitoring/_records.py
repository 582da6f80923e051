"""The documents the triggers write (SPEC section 2): `retraining_triggers` and `drift_monitoring`.

A trigger document follows its run: pending -> running -> completed | failed. Every write is an
idempotent upsert keyed by `trigger_id`, and the status only moves forward (a late STARTED event
never turns a completed trigger back into running; a terminal status is final), because Dagster's
run-status sensors may see events late, twice (UI previews), or not at all (they never retry).

One exception: a failed trigger is taken up again by a re-execution of its run (the UI's "Re-execute
from failure", Dagster's run retries: the new run carries the trigger's tag and names the run it
re-executes), which it then follows from its own start. `attempts` lists the runs it followed, each
with the run it re-executes, so an event of an earlier attempt seen late changes nothing.

What a sensor evaluation writes is stamped with the evaluation it came from (`evaluation_stamp`: the sensor and
a digest of its input cursor). Dagster also evaluates a sensor without using the result (the UI's "Preview tick
result": no run launched, no cursor stored), and nothing tells the code that it is such an evaluation. The
next evaluation from the same cursor is either the real tick or another evaluation whose result goes unused:
every committed tick that writes moves the cursor on (a check or a request is in it). So each evaluation
first deletes what earlier evaluations from its cursor wrote and nothing took up (`discard_unused`: no run
followed the trigger, none was launched with its run key), then decides as if they had never run: the real
tick after a preview leaves exactly what it leaves alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from hive_assets import clock
from hive_assets.data import DocumentStore

TRIGGERS = "retraining_triggers"
DRIFT_CHECKS = "drift_monitoring"
REASONS = ("feedback", "drift", "manual")
# forward-only order of the statuses; the two terminal ones share the last rank
STATUS_RANK = {"pending": 0, "running": 1, "completed": 2, "failed": 2}

EVALUATION = "sensor_evaluation"  # the field that says which sensor evaluation wrote a document

__all__ = ["DRIFT_CHECKS", "EVALUATION", "REASONS", "STATUS_RANK", "TRIGGERS", "discard_unused", "evaluation_stamp",
           "record_trigger", "save_drift_check", "update_trigger_status", "with_retraining"]


def _now() -> datetime:
    return clock.now()


def record_trigger(store: DocumentStore, trigger_id: str, specialist: str, reason: str, triggered_at: datetime,
                   *, feedback_count: int | None = None, drift_score: float | None = None,
                   details: Mapping[str, Any] | None = None, evaluation: str | None = None) -> dict:
    """Write the pending trigger document unless it exists (then it is returned unchanged). `evaluation`: the
    sensor evaluation that writes it (`evaluation_stamp`), None for a write of no sensor's (`hive drift check`)."""
    if reason not in REASONS:
        raise ValueError(f"unknown trigger reason {reason!r}; one of {REASONS}")
    existing = store.find_one(TRIGGERS, {"trigger_id": trigger_id})
    if existing is not None:
        return existing
    doc = {"trigger_id": trigger_id, "specialist_type": specialist, "reason": reason, "triggered_at": triggered_at,
           "feedback_count": feedback_count, "drift_score": drift_score, "status": "pending",
           "dagster_run_id": None, "started_at": None, "completed_at": None, "metrics": {},
           "details": dict(details or {})}
    if evaluation is not None:
        doc[EVALUATION] = evaluation
    store.upsert_many(TRIGGERS, [doc])
    return doc


def _earlier_attempt(doc: Mapping[str, Any], run_id: str) -> bool:
    """Whether `run_id` is an attempt before the run the document follows: one it followed before, or one
    that run re-executes, directly or not (module docstring)."""
    if run_id == doc.get("dagster_run_id"):
        return False
    parents = {a.get("run_id"): a.get("parent_run_id") for a in doc.get("attempts") or []}
    if run_id in parents:
        return True
    current, seen = parents.get(doc.get("dagster_run_id")), set()
    while current is not None and current not in seen:
        if current == run_id:
            return True
        seen.add(current)
        current = parents.get(current)
    return False


def update_trigger_status(store: DocumentStore, trigger_id: str, status: str, *, run_id: str | None = None,
                          specialist: str | None = None, reason: str | None = None, at: datetime | None = None,
                          metrics: Mapping[str, Any] | None = None, error: str | None = None,
                          parent_run_id: str | None = None) -> tuple[dict, bool]:
    """Move the trigger to `status` if that is forward (STATUS_RANK); (document, changed).

    A missing document (its pending write was lost) is created from what the run knows. Repeating
    an update is a no-op, so it is safe for every sensor evaluation, preview or retry. `parent_run_id`:
    the run that `run_id` re-executes; such a run takes a failed trigger up again (module docstring).
    """
    if status not in STATUS_RANK:
        raise ValueError(f"unknown trigger status {status!r}; one of {sorted(STATUS_RANK)}")
    at = at or _now()
    doc = store.find_one(TRIGGERS, {"trigger_id": trigger_id})
    if doc is None:
        doc = {"trigger_id": trigger_id, "specialist_type": specialist, "reason": reason or "manual",
               "triggered_at": at, "feedback_count": None, "drift_score": None, "status": "pending",
               "dagster_run_id": None, "started_at": None, "completed_at": None, "metrics": {}, "details": {}}
    current = doc.get("status", "pending")
    if run_id is not None and _earlier_attempt(doc, run_id):
        return doc, False
    if current == "failed" and parent_run_id is not None and run_id not in (None, doc.get("dagster_run_id")):
        # a re-execution it has not followed yet: followed from its start
        doc = {k: v for k, v in doc.items() if k != "error"}
        doc.update(status="pending", started_at=None, completed_at=None, metrics={})
        current = "pending"
    terminal = STATUS_RANK.get(current, 0) == max(STATUS_RANK.values())
    if terminal or STATUS_RANK[status] < STATUS_RANK.get(current, 0) or (
            status == current and (run_id is None or doc.get("dagster_run_id") == run_id)):
        return doc, False
    doc = dict(doc, status=status)
    if run_id is not None:
        doc["dagster_run_id"] = run_id
        attempts = list(doc.get("attempts") or [])
        if run_id not in {a.get("run_id") for a in attempts}:
            doc["attempts"] = [*attempts, {"run_id": run_id, "parent_run_id": parent_run_id}]
    if status == "running":
        doc["started_at"] = at
    if STATUS_RANK[status] == max(STATUS_RANK.values()):
        doc["completed_at"] = at
        doc.setdefault("started_at", None)
    if metrics:
        doc["metrics"] = storable_metrics(metrics)
    if error:
        doc["error"] = error[:2000]
    store.upsert_many(TRIGGERS, [doc])
    return doc, True


def storable_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """{"<asset>.<name>": value} as {"<asset>": {"<name>": value}}: FerretDB refuses a field name with a '.' (or
    a leading '$'), which failed every completed or failed trigger's write; nested, `metrics.<asset>.<name>`
    is also the path a query names."""
    def field(name: str) -> str:
        return name.replace(".", "_").lstrip("$") or "_"

    out: dict[str, Any] = {}
    for key, value in metrics.items():
        asset, _, name = str(key).partition(".")
        if name:
            out.setdefault(field(asset), {})[field(name)] = value
        else:
            out[field(asset)] = value
    return out


def with_retraining(document: Mapping[str, Any], action: str, reason: str, run_key: str | None = None) -> dict:
    """The drift check's `document` with what its drift led to: `retraining` = {action, reason} ("requested"
    with `run_key`, the id of the trigger document just written; or "held", no run key) and `run_key`. A
    held check so says why and carries no run key: every run key in `drift_monitoring` names a trigger."""
    if action not in ("requested", "held"):
        raise ValueError(f"unknown retraining action {action!r}; 'requested' or 'held'")
    if (action == "requested") != (run_key is not None):
        raise ValueError("a requested retraining has a run key, a held one has none")
    return dict(document, run_key=run_key, retraining={"action": action, "reason": reason})


def held_reason(document: Mapping[str, Any]) -> str | None:
    """Why a drift check's drift requested no retrain (`with_retraining`'s "held"), or None."""
    retraining = document.get("retraining") or {}
    return retraining.get("reason") if retraining.get("action") == "held" else None


def save_drift_check(store: DocumentStore, document: Mapping[str, Any], evaluation: str | None = None) -> None:
    """Upsert one `drift_monitoring` document (keyed by its `check_id`); `evaluation` as for `record_trigger`."""
    stamped = {} if evaluation is None else {EVALUATION: evaluation}
    store.upsert_many(DRIFT_CHECKS, [{**document, **stamped}])


def evaluation_stamp(sensor: str, cursor: str | None) -> str | None:
    """The stamp of what an evaluation of `sensor` from `cursor` writes (module docstring): None without a
    cursor (a sensor's first tick, or one reset to none), whose writes are never discarded: a committed first
    tick and a later evaluation from no cursor could not be told apart."""
    if not cursor:
        return None
    return f"{sensor}@{hashlib.sha256(cursor.encode()).hexdigest()[:16]}"


def discard_unused(store: DocumentStore, evaluation: str | None, launched: Callable[[str], bool]) -> list[str]:
    """Delete what earlier evaluations stamped `evaluation` wrote (the same sensor, from the same cursor: their
    results were not used) unless something took it up; the ids deleted. `launched(run_key)`: whether a run
    was launched with that run key. A trigger is taken up when it left `pending`, names a run, or was launched;
    a drift check when the trigger it requested was (a held or quiet check never is)."""
    if evaluation is None:
        return []
    stamped = {d["trigger_id"]: d for d in store.find(TRIGGERS, {EVALUATION: evaluation})}
    taken_up: dict[str, bool] = {}  # trigger id -> whether a run took it up, each asked once

    def took_up(trigger_id: str | None) -> bool:
        if trigger_id is None:
            return False
        if trigger_id not in taken_up:
            trigger = stamped.get(trigger_id) or store.find_one(TRIGGERS, {"trigger_id": trigger_id})
            taken_up[trigger_id] = trigger is not None and (
                trigger.get("status") != "pending" or bool(trigger.get("dagster_run_id")) or launched(trigger_id))
        return taken_up[trigger_id]

    triggers = [t for t in stamped if not took_up(t)]
    checks = [d["check_id"] for d in store.find(DRIFT_CHECKS, {EVALUATION: evaluation},
                                                projection=["check_id", "run_key"])
              if not took_up(d.get("run_key"))]
    if checks:  # the checks first: a check's requested trigger always exists
        store.delete_many(DRIFT_CHECKS, {"check_id": {"$in": checks}})
    if triggers:
        store.delete_many(TRIGGERS, {"trigger_id": {"$in": triggers}})
    return [*checks, *triggers]


def unlaunched_drift_request(store: DocumentStore, specialist: str) -> str | None:
    """The run key the latest drift check requested when no run has taken it up yet (its trigger is still
    pending, with no run id), else None. The check's tick was committed without its run being launched (the
    UI's "Commit tick result" after a preview stores the cursor only): the next real tick, which the recorded
    check makes wait an interval on simulated time, requests that key again (the daemon launches a run key
    once). A preview that was not committed leaves nothing to request again (`discard_unused`)."""
    last = store.find_one(DRIFT_CHECKS, {"specialist_type": specialist}, sort=[("checked_at", -1)])
    if last is None or (last.get("retraining") or {}).get("action") != "requested" or not last.get("run_key"):
        return None
    trigger = store.find_one(TRIGGERS, {"trigger_id": last["run_key"]})
    if trigger is None or trigger.get("status") != "pending" or trigger.get("dagster_run_id"):
        return None
    return str(last["run_key"])
