"""The closed loop's story, read back from the documents the platform wrote (not from the simulator).

`build_timeline(store, start, end)`: per specialist, in simulated time, every drift verdict change,
trigger (with its run's final status), gate verdict, registration, alias move, A/B traffic step,
promotion, rollback and closed test. `champions(store, client)`: who holds `champion` now, the ledger
row that put it there, and whether the ledger agrees with the registry alias. `format_timeline` and
`format_champions` print them for a person. Dagster run ids (random) stay out of the text, so the
same seed prints the same timeline; `TimelineEvent.run_id` keeps them for the JSON output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from hive_assets.config import SPECIALISTS
from hive_assets.data import to_utc

__all__ = ["ChampionAnswer", "TimelineEvent", "build_timeline", "champions", "format_champions", "format_timeline"]

# sources at the same instant, in causal order: a drift check, its trigger, then what the run decided
_RANK = {"drift": 0, "trigger": 1, "ledger": 2}


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    specialist: str
    what: str          # drift | trigger | gate | registered | alias | traffic | promoted | rolled_back | closed | ...
    text: str
    run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


def _in(at, start: datetime, end: datetime) -> bool:
    at = to_utc(at)
    return at is not None and start <= at <= end


def _actor(actor: str | None) -> str:
    actor = actor or ""
    if actor.startswith("dagster:"):
        return "a Dagster run"
    return actor or "unknown"


def _drift_events(store, start, end) -> Iterable[tuple]:
    for s in SPECIALISTS:
        previous = False
        checks = store.find("drift_monitoring", {"specialist_type": s}, sort=[("checked_at", 1)])
        for seq, doc in enumerate(checks):
            if not _in(doc["checked_at"], start, end):
                continue
            drifted = doc["decision"] == "drift"
            if drifted != previous and (drifted or previous):  # drift starts, or ends after a drift
                text = (f"drift detected vs champion v{doc['model_version']}: score {doc['drift_score']:.3f} "
                        f"on {doc['drift_feature']} (window of {doc['window_size']} rows)" if drifted else
                        f"no drift any more vs champion v{doc['model_version']} (score {doc['drift_score']:.3f})")
                yield (to_utc(doc["checked_at"]), _RANK["drift"], seq, TimelineEvent(
                    to_utc(doc["checked_at"]), s, "drift", text))
            previous = drifted


def _trigger_events(store, start, end) -> Iterable[tuple]:
    docs = store.find("retraining_triggers", {}, sort=[("triggered_at", 1)])
    for seq, doc in enumerate(docs):
        if not _in(doc["triggered_at"], start, end):
            continue
        cause = (f"{doc['feedback_count']} trusted feedback since the last training" if doc["reason"] == "feedback"
                 else f"drift score {doc['drift_score']:.3f}" if doc["reason"] == "drift" and doc.get("drift_score")
                 is not None else doc["reason"])
        text = f"{doc['reason']} trigger ({cause}) -> retrain_specialist run {doc['status']}"
        if doc.get("error"):
            text += f": {doc['error'][:120]}"
        yield (to_utc(doc["triggered_at"]), _RANK["trigger"], seq, TimelineEvent(
            to_utc(doc["triggered_at"]), doc["specialist_type"], "trigger", text, doc.get("dagster_run_id")))


def _ledger_text(row: dict) -> tuple[str, str]:
    kind, details, version = row["kind"], row.get("details") or {}, row.get("model_version")
    reason = row.get("reason") or ""
    if kind == "gate_verdict":
        return "gate", f"gate {'passed' if details.get('passed') else 'FAILED'}: {reason}"
    if kind == "registration":
        return "registered", f"registered v{version}"
    if kind == "alias_move":
        return "alias", f"v{version} -> {details.get('alias')} ({reason})"
    if kind == "traffic_step":
        return "traffic", f"A/B {details.get('test_id')}: challenger v{version} at {details.get('traffic_percent'):g} % ({reason})"
    if kind == "promotion":
        return "promoted", f"v{version} PROMOTED to champion (was v{details.get('previous_version')}): {reason}"
    if kind == "rollback":
        return "rolled_back", f"v{version} ROLLED BACK by {_actor(row.get('actor'))}: {reason}"
    if kind == "ab_test_closed":
        return "closed", f"A/B {details.get('test_id')} closed: {details.get('status', '')} {reason}".rstrip()
    return kind, f"{kind} v{version}: {reason}"


def _ledger_events(store, start, end) -> Iterable[tuple]:
    rows = store.find("model_decisions", {}, sort=[("recorded_at", 1)])
    for seq, row in enumerate(rows):
        if not _in(row["recorded_at"], start, end):
            continue
        what, text = _ledger_text(row)
        if row.get("actor", "").startswith("operator:"):
            text += f" [{row['actor']}]"
        yield (to_utc(row["recorded_at"]), _RANK["ledger"], seq, TimelineEvent(
            to_utc(row["recorded_at"]), row["specialist_type"], what, text, row.get("dagster_run_id")))


def build_timeline(store, start: datetime, end: datetime) -> list[TimelineEvent]:
    """Every event between `start` and `end` (inclusive), in time order (module docstring)."""
    keyed = [*_drift_events(store, start, end), *_trigger_events(store, start, end), *_ledger_events(store, start, end)]
    return [event for *_, event in sorted(keyed, key=lambda k: k[:3])]


def format_timeline(events: list[TimelineEvent], start: datetime) -> str:
    lines = []
    for s in SPECIALISTS:
        mine = [e for e in events if e.specialist == s]
        lines.append(f"{s}: {len(mine)} event(s)")
        for e in mine:
            elapsed = (e.at - start).total_seconds() / 3600
            lines.append(f"  {e.at:%Y-%m-%d %H:%M}  (h{elapsed:+.0f})  {e.what:<11} {e.text}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ChampionAnswer:
    specialist: str
    registry_version: str | None
    ledger_version: str | None
    since: datetime | None
    kind: str | None
    actor: str | None
    reason: str | None

    @property
    def agrees(self) -> bool:
        return self.registry_version == self.ledger_version

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "since": self.since.isoformat() if self.since else None, "agrees": self.agrees}


def champions(store, client) -> list[ChampionAnswer]:
    """Per specialist: the registry's champion, and the ledger row that moved `champion` last."""
    from hive_assets.registry import CHAMPION, alias_version, last_alias_row

    out = []
    for s in SPECIALISTS:
        version = alias_version(client, s, CHAMPION)
        row = last_alias_row(store, s, CHAMPION)
        out.append(ChampionAnswer(
            s, str(version.version) if version else None, str(row["model_version"]) if row else None,
            to_utc(row["recorded_at"]) if row else None, row["kind"] if row else None,
            _actor(row.get("actor")) if row else None, row.get("reason") if row else None))
    return out


def format_champions(answers: list[ChampionAnswer]) -> str:
    lines = []
    for a in answers:
        if a.registry_version is None:
            lines.append(f"{a.specialist:<13} no champion")
            continue
        since = f"{a.since:%Y-%m-%d %H:%M}" if a.since else "?"
        agreement = "the ledger agrees with the registry" if a.agrees else (
            f"LEDGER DISAGREES: the ledger says v{a.ledger_version}")
        lines.append(f"{a.specialist:<13} v{a.registry_version} since {since}: {a.kind} by {a.actor}, "
                     f"because {a.reason}; {agreement}")
    return "\n".join(lines)
