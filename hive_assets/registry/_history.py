"""Who held an alias when: the ledger's answer to "which version served specialist S at time T, since
when, and why" (SPEC section 6, issue 11).

Method: the rows of `model_decisions` that moved the alias (`ALIAS_KINDS`), in time order, are a
sequence of tenures; tenure i starts at row i and ends where row i+1 starts. Assumption: every move went
through the ledger (the operations write it after the registry moves, and reconcile a move the registry
holds but the ledger lacks before any new one), so the ledger's last row names the registry's holder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime

from hive_assets import clock
from hive_assets.data import to_utc
from hive_assets.data.store.base import DocumentStore
from hive_assets.registry._ledger import ALIAS_KINDS
from hive_assets.routing import CHALLENGER, CHAMPION

AB_TEST_CLOSED = "ab_test_closed"  # the ledger row of a test's end (rollout writes it), which ends its A/B aliases


@dataclass(frozen=True)
class Tenure:
    """One version's time holding an alias: [since, until), until None while it still holds it."""

    version: str
    since: datetime
    until: datetime | None
    kind: str
    actor: str
    reason: str
    dagster_run_id: str | None
    previous_version: str | None
    decision_id: str

    def as_dict(self) -> dict:
        out = asdict(self)
        out["since"] = self.since.isoformat()
        out["until"] = self.until.isoformat() if self.until else None
        return out


def _happened_at(row: dict, alias: str) -> datetime:
    """When the row's move happened: its time, or for an A/B alias the opening's or closing's own time
    (`details.at`) when the row was recorded after the fact (a test opened by an older release, an opening
    cut short: the next look writes the row)."""
    recorded = to_utc(row["recorded_at"])
    happened = to_utc((row.get("details") or {}).get("at")) if alias != CHAMPION else None
    return happened if happened is not None and happened < recorded else recorded


def alias_history(store: DocumentStore, specialist: str, alias: str = CHAMPION) -> list[Tenure]:
    """Every tenure of `alias` for `specialist`, oldest first, from the ledger.

    `champion` is never removed: a tenure ends where the next starts. The A/B aliases are removed when a
    test closes (`challenger` unless superseded, `ab-test-v<N>` always): a tenure of one also ends at its
    version's `ab_test_closed` row, and nobody holds the alias until the next move."""
    # the moves and the closures in one ledger order (a tie in time keeps the order they were written in)
    both = list(store.find("model_decisions", {"specialist_type": specialist,
                                               "kind": {"$in": [*ALIAS_KINDS, AB_TEST_CLOSED]}},
                           sort=[("recorded_at", 1)]))
    order = {r["decision_id"]: i for i, r in enumerate(both)}
    rows = [r for r in both if r["kind"] in ALIAS_KINDS and (r.get("details") or {}).get("alias") == alias]
    starts = [_happened_at(r, alias) for r in rows]
    tenures = [Tenure(version=str(r["model_version"]), since=start,
                      until=starts[i + 1] if i + 1 < len(rows) else None,
                      kind=r["kind"], actor=r.get("actor", ""), reason=r.get("reason", ""),
                      dagster_run_id=r.get("dagster_run_id"),
                      previous_version=(r.get("details") or {}).get("previous_version"),
                      decision_id=r["decision_id"])
               for i, (r, start) in enumerate(zip(rows, starts))]
    if alias == CHAMPION or not tenures:
        return tenures
    closures = [(str(r.get("model_version")), _happened_at(r, alias), order[r["decision_id"]])
                for r in both if r["kind"] == AB_TEST_CLOSED
                and (alias != CHALLENGER or (r.get("details") or {}).get("status") != "superseded")]
    ended = []
    for tenure in tenures:
        # a closure ends the tenure it comes after: one in the same second as the tenure's start (a test stopped
        # and its version's next test opened at once, the clock pinned) ended the earlier tenure, not this one
        ends = [at for version, at, i in closures if version == tenure.version and at is not None
                and (at > tenure.since or (at == tenure.since and i > order[tenure.decision_id]))
                and (tenure.until is None or at < tenure.until)]
        ended.append(replace(tenure, until=min(ends)) if ends else tenure)
    return ended


def holder_at(store: DocumentStore, specialist: str, at: datetime | None = None,
              alias: str = CHAMPION) -> Tenure | None:
    """The tenure of `alias` covering time `at` (default now; a naive time is UTC), or None before the first
    (and, for the A/B aliases, after a tenure ended with its test)."""
    at = to_utc(at) if at is not None else clock.now()
    covering = [t for t in alias_history(store, specialist, alias) if t.since <= at]
    if not covering or (covering[-1].until is not None and covering[-1].until <= at):
        return None
    return covering[-1]
