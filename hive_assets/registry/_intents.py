"""Intent before effect: every decision that takes more than one write (a promotion, a rollback, an A/B
test's outcome) is first recorded in `decision_intents` as what it is about to do, then applied, then
marked done.

An intent has a deterministic `intent_id` (the same decision retried finds its own record), the
`operation`, the `params` needed to apply it again from scratch, who decided it (actor, Dagster run), and
`state`: `intended` until every effect is in place, then `done` with the result. A process killed between
two effects leaves an `intended` record; whoever acts on that specialist next (an operator command, an
A/B look, the A/B sensor's resume request) completes it first, with the original actor and run, before
doing anything else. Applying is idempotent (each effect is written only when missing), so completing an
intent twice changes nothing.

The appliers live with their operations (`_operations` for promote and rollback, `hive_assets.rollout`
for A/B outcomes); `complete` here dispatches the registry's own.
"""

from __future__ import annotations

from typing import Any

from hive_assets import clock
from hive_assets.data import to_utc
from hive_assets.data.store.base import DocumentStore

COLLECTION = "decision_intents"
INTENDED = "intended"
DONE = "done"

PROMOTE = "promote"
ROLLBACK = "rollback"
AB_OUTCOME = "ab_outcome"  # applied by hive_assets.rollout
REGISTRY_OPERATIONS = (PROMOTE, ROLLBACK)


def begin(store: DocumentStore, intent_id: str, specialist: str, operation: str, params: dict[str, Any], *,
          actor: str, dagster_run_id: str | None) -> dict[str, Any]:
    """Record the intent (written once: a retry of the same decision returns the stored record)."""
    doc = {"intent_id": intent_id, "specialist_type": specialist, "operation": operation, "params": params,
           "state": INTENDED, "actor": actor, "dagster_run_id": dagster_run_id, "recorded_at": clock.now(),
           "done_at": None, "result": None, "completed_by": None}
    if store.insert_new(COLLECTION, doc):
        return doc
    return store.find_one(COLLECTION, {"intent_id": intent_id}) or doc


def finish(store: DocumentStore, intent_id: str, result: dict[str, Any], completed_by: str | None = None) -> None:
    """Mark the intent done with its result (only while it is still intended: done stays done)."""
    store.update_one(COLLECTION, {"intent_id": intent_id, "state": INTENDED},
                     {"state": DONE, "done_at": clock.now(), "result": _plain(result), "completed_by": completed_by})


def get(store: DocumentStore, intent_id: str) -> dict[str, Any] | None:
    return store.find_one(COLLECTION, {"intent_id": intent_id})


def unfinished(store: DocumentStore, specialist: str, operations: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The specialist's intents still `intended`, oldest first (optionally of some operations only)."""
    rows = store.find(COLLECTION, {"specialist_type": specialist, "state": INTENDED}, sort=[("recorded_at", 1)])
    return [r for r in rows if operations is None or r["operation"] in operations]


def specialists_with_unfinished(store: DocumentStore) -> dict[str, list[str]]:
    """{specialist: [intent ids]} of every intent still `intended` (the A/B sensor's resume list)."""
    out: dict[str, list[str]] = {}
    for row in store.find(COLLECTION, {"state": INTENDED}, sort=[("recorded_at", 1)]):
        out.setdefault(row["specialist_type"], []).append(row["intent_id"])
    return out


def interrupted(store: DocumentStore, specialist: str | None = None) -> list[dict[str, Any]]:
    """The intents still `intended` (of one specialist, or all), oldest first, as `hive doctor` reports them:
    what was decided, since when, by whom (actor, Dagster run), and what completes it. `done` ones are
    finished and left out."""
    query: dict[str, Any] = {"state": INTENDED}
    if specialist is not None:
        query["specialist_type"] = specialist
    out = []
    for row in store.find(COLLECTION, query, sort=[("recorded_at", 1)]):
        p = row.get("params") or {}
        out.append({"intent_id": row["intent_id"], "specialist": row["specialist_type"],
                    "operation": row["operation"],
                    "target": f"v{p['version']}" if p.get("version") else p.get("test_id"),
                    "since": recorded_at(row), "actor": row.get("actor"),
                    "dagster_run_id": row.get("dagster_run_id"), "completes_it": completion_hint(row)})
    return out


def recorded_at(intent: dict[str, Any]) -> str | None:
    """When the intent was recorded (the decision taken, before its first effect): ISO-8601 to the second."""
    at = to_utc(intent.get("recorded_at"))
    return at.isoformat(timespec="seconds") if at else None


def completion_hint(intent: dict[str, Any]) -> str:
    """What completes an unfinished intent: whoever acts on the specialist next, or the same command again."""
    s, p = intent["specialist_type"], intent.get("params") or {}
    nxt = (f"the next registry or A/B command for {s} (`hive deploy register|promote|rollback|alias`, `hive "
           f"ab-test start|check|expand|stop`), A/B look or A/B sensor tick")
    if intent["operation"] == PROMOTE:
        return f"{nxt}, or rerunning `hive deploy promote --specialist {s} --model-version {p.get('version')}`"
    if intent["operation"] == ROLLBACK:
        key = f" --idempotency-key {p['idempotency_key']}" if p.get("idempotency_key") else ""
        return f"{nxt}, or rerunning `hive deploy rollback --specialist {s}{key}`"
    return f"{nxt} (`hive ab-test check --specialist {s}` reruns the look)"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
