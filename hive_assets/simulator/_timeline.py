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
    from hive_assets.monitoring import held_reason  # scipy and the drift code: not on `import hive_assets.simulator`

    for s in SPECIALISTS:
        previous, champion = False, None
        checks = store.find("drift_monitoring", {"specialist_type": s}, sort=[("checked_at", 1)])
        for seq, doc in enumerate(checks):
            if not _in(doc["checked_at"], start, end):
                continue
            drifted = doc["decision"] == "drift"
            # drift starts, ends after a drift, or goes on against a new champion (a promotion during a drift
            # showed no line for the new champion, while `hive status` and the next loop said it drifted)
            if (drifted != previous and (drifted or previous)) or (drifted and doc["model_version"] != champion):
                text = (f"drift detected vs champion v{doc['model_version']}: score {doc['drift_score']:.3f} "
                        f"on {doc['drift_feature']} (window of {doc['window_size']} rows)" if drifted else
                        f"no drift any more vs champion v{doc['model_version']} (score {doc['drift_score']:.3f})")
                if drifted and (held := held_reason(doc)):  # why no trigger follows it (yet)
                    text += f"; retraining held: {held}"
                yield (to_utc(doc["checked_at"]), _RANK["drift"], seq, TimelineEvent(
                    to_utc(doc["checked_at"]), s, "drift", text))
            previous, champion = drifted, doc["model_version"]


def _trigger_events(store, start, end) -> Iterable[tuple]:
    docs = store.find("retraining_triggers", {}, sort=[("triggered_at", 1)])
    for seq, doc in enumerate(docs):
        if not _in(doc["triggered_at"], start, end):
            continue
        cause = (f"{doc['feedback_count']} trusted feedback since the last training" if doc["reason"] == "feedback"
                 else f"drift score {doc['drift_score']:.3f}" if doc["reason"] == "drift" and doc.get("drift_score")
                 is not None else "launched by hand" if doc["reason"] == "manual" else doc["reason"])
        text = f"{doc['reason']} trigger ({cause}) -> retrain_specialist run {doc['status']}"
        if doc.get("error"):
            text += f": {doc['error'][:120]}"
        yield (to_utc(doc["triggered_at"]), _RANK["trigger"], seq, TimelineEvent(
            to_utc(doc["triggered_at"]), doc["specialist_type"], "trigger", text, doc.get("dagster_run_id")))


def _ledger_text(row: dict) -> tuple[str, str]:
    kind, details, version = row["kind"], row.get("details") or {}, row.get("model_version")
    reason = row.get("reason") or ""
    if kind == "gate_verdict":
        return "gate", _gate_text(details, reason)
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


def _gate_text(details: dict, reason: str) -> str:
    """The blocking gate's verdict, then what the champion comparison meant for this version: a version
    that passed the gate but was not shown non-inferior is not promoted by `promote_if_better`; with A/B
    testing on it becomes the challenger and its test decides."""
    ni = details.get("non_inferiority") or {}
    gate = reason.removesuffix(f"; {ni['summary']}") if ni.get("summary") else reason
    if not details.get("passed"):
        return f"gate FAILED: {gate}; not registered"
    text = f"gate passed: {gate}"
    if not ni.get("applicable"):
        return text
    if ni.get("passed"):
        return f"{text}; non-inferior to the champion"
    from hive_assets.config import Settings

    first = (ni.get("failures") or [{}])[0].get("text", ni.get("summary", ""))
    outcome = "sent to A/B rather than promoted" if Settings.from_env().ab_testing_enabled else "not promoted"
    return f"{text}; non-inferiority to the champion not shown ({first}): {outcome}"


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


def why_quiet(store, specialist: str, start: datetime, end: datetime) -> list[str]:
    """Why nothing happened to `specialist` between `start` and `end`, from its records: drift checks that lacked
    rows (a low-volume specialist's drift is never judged) and a running A/B test's last look (waiting for
    labels). At 5 plans an hour or 2 % answered the loop printed "0 event(s)" and nothing else (audit)."""
    lines = []
    checks = [d for d in store.find("drift_monitoring", {"specialist_type": specialist}, sort=[("checked_at", 1)])
              if _in(d["checked_at"], start, end)]
    short = [d for d in checks if d["decision"] == "insufficient_data"]
    if short:
        last = short[-1]
        lines.append(f"{len(short)} of {len(checks)} drift check(s) lacked rows (the last: {last.get('window_size')} "
                     f"of the {last.get('min_rows')} it needs): a drift is not judged on fewer")
    test = store.find_one("ab_tests", {"specialist_type": specialist, "status": "running"}, sort=[("started_at", -1)])
    if test is not None and test.get("checks"):
        lines.append(f"A/B test {test['test_id']} at {float(test['traffic_percent']):g} %, its last look: "
                     f"{test['checks'][-1].get('reason')}")
    return lines


def format_timeline(events: list[TimelineEvent], start: datetime, specialists: Iterable[str] = SPECIALISTS,
                    quiet: dict[str, list[str]] | None = None) -> str:
    """The events per specialist; `quiet`: for one without events, why (`why_quiet`)."""
    lines = []
    for s in specialists:
        mine = [e for e in events if e.specialist == s]
        lines.append(f"{s}: {len(mine)} event(s)")
        if not mine:
            lines += [f"  {line}" for line in (quiet or {}).get(s, [])]
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
    # the champion's held-out numbers, from its MLflow run (None when the run has none)
    test_accuracy: float | None = None
    test_accuracy_interval: tuple[float, float] | None = None
    test_macro_f1: float | None = None
    test_rows: int | None = None
    baseline_accuracy: float | None = None  # the pre-platform heuristic on the same test rows

    @property
    def agrees(self) -> bool:
        return self.registry_version == self.ledger_version

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "since": self.since.isoformat() if self.since else None, "agrees": self.agrees}


TEST_ROWS_ARTIFACT = "test_rows.json"  # validation_report logs the test rows' plan ids and labels


def heuristic_baseline(store, client, specialist: str, run_id: str) -> tuple[float, int] | None:
    """(accuracy, rows) of the pre-platform heuristic (`heuristic_opinion`, which served every opinion
    before the first champion) on the test rows of training run `run_id`, against their human labels;
    None when the run has no test rows logged or their plans are gone."""
    from hive_assets.data import plan_to_serve
    from hive_assets.registry import run_json_artifact
    from hive_assets.simulator._simulate import heuristic_opinion

    rows = run_json_artifact(client, run_id, TEST_ROWS_ARTIFACT)
    if rows is None:
        return None
    plans: dict[str, dict] = {}
    for doc in store.find_by_keys("cognitive_ledger", "plan_id", rows["plan_id"]):
        if isinstance(doc.get("plan_data"), dict):
            plans[doc["plan_id"]] = doc["plan_data"]
    missing = [p for p in rows["plan_id"] if p not in plans]
    for doc in store.find_by_keys("cognitive_plans", "plan_id", missing):
        plans[doc["plan_id"]] = doc
    # a plan replaced since (another `hive simulate` with the same seed) may be one collection would quarantine:
    # the heuristic has no answer for it (it raised KeyError: 'tasks' at the end of a loop), so that row is left out
    plans = {p: plan for p, plan in plans.items() if not plan_to_serve(plan)[1]}
    hits = [heuristic_opinion(specialist, plans[p])[0] == label
            for p, label in zip(rows["plan_id"], rows["label"]) if p in plans]
    return (sum(hits) / len(hits), len(hits)) if hits else None


def _run_numbers(store, client, specialist: str, run_id: str | None) -> dict[str, Any]:
    if not run_id:
        return {}
    metrics = client.get_run(run_id).data.metrics
    out: dict[str, Any] = {"test_accuracy": metrics.get("test_accuracy"), "test_macro_f1": metrics.get("test_macro_f1")}
    if "test_accuracy_ci_low" in metrics and "test_accuracy_ci_high" in metrics:
        out["test_accuracy_interval"] = (metrics["test_accuracy_ci_low"], metrics["test_accuracy_ci_high"])
    if (baseline := heuristic_baseline(store, client, specialist, run_id)) is not None:
        out["baseline_accuracy"], out["test_rows"] = baseline
    return out


def champions(store, client) -> list[ChampionAnswer]:
    """Per specialist: the registry's champion, the ledger row that moved `champion` last, the champion's
    test accuracy and macro-F1 (its MLflow run) and the heuristic baseline on the same test rows."""
    from hive_assets.registry import CHAMPION, alias_version, last_alias_row

    out = []
    for s in SPECIALISTS:
        version = alias_version(client, s, CHAMPION)
        row = last_alias_row(store, s, CHAMPION)
        out.append(ChampionAnswer(
            s, str(version.version) if version else None, str(row["model_version"]) if row else None,
            to_utc(row["recorded_at"]) if row else None, row["kind"] if row else None,
            _actor(row.get("actor")) if row else None, row.get("reason") if row else None,
            **_run_numbers(store, client, s, version.run_id if version else None)))
    return out


CHAMPIONS_LEGEND = (
    "champion: the version serving production (the registry's `champion` alias); since: when the ledger "
    "recorded it (simulated time); how: first model, promoted (A/B test or operator), rollback, alias set",
    "test acc. [95% CI], macro-F1: the champion on its held-out test split (the latest 15 % of its data by "
    "time) against the human labels, with the plan-bootstrap interval",
    "heuristic: the pre-platform heuristic (it served every opinion before the first champion) on the same "
    "test rows, the baseline the platform replaced; rows: test rows",
)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_champions(answers: list[ChampionAnswer]) -> str:
    """The champions table (what serves, since when, how good vs the heuristic on the same rows), its
    legend, then why each champion holds the alias (the ledger), and whether the ledger agrees with
    the registry."""
    header = (f"{'specialist':<13}{'champion':<10}{'since':<18}{'how':<12}{'test acc. [95% CI]':<22}"
              f"{'macro-F1':>9}{'heuristic':>11}{'rows':>6}")
    lines = [header, "-" * len(header)]
    why = []
    for a in answers:
        if a.registry_version is None:
            lines.append(f"{a.specialist:<13}no champion")
            continue
        since = f"{a.since:%Y-%m-%d %H:%M}" if a.since else "?"
        accuracy = _num(a.test_accuracy) + (
            f" [{a.test_accuracy_interval[0]:.3f},{a.test_accuracy_interval[1]:.3f}]" if a.test_accuracy_interval else "")
        how = ("first model" if a.kind == "alias_move" and "first model" in (a.reason or "") else
               {"promotion": "promoted", "alias_move": "alias set", "rollback": "rollback"}.get(a.kind or "", a.kind or "?"))
        lines.append(f"{a.specialist:<13}{'v' + a.registry_version:<10}{since:<18}{how:<12}{accuracy:<22}"
                     f"{_num(a.test_macro_f1):>9}{_num(a.baseline_accuracy):>11}{a.test_rows or '-':>6}")
        agreement = "" if a.agrees else f" LEDGER DISAGREES: the ledger says v{a.ledger_version}"
        why.append(f"  {a.specialist}: v{a.registry_version}, {a.kind} by {a.actor}: {a.reason}{agreement}")
    lines += [f"  {item}" for item in _wrap_legend()]
    agree = all(a.agrees for a in answers if a.registry_version is not None)
    lines.append("why (the ledger" + (", which agrees with the registry aliases):" if agree else "):"))
    return "\n".join(lines + why)


def _wrap_legend() -> list[str]:
    import textwrap

    out = []
    for item in CHAMPIONS_LEGEND:
        out += textwrap.wrap(item, 108, initial_indent="- ", subsequent_indent="  ")
    return out
