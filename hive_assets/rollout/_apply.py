"""Carry out the rollout controller's decisions: the `ab_tests` record, the registry and the ledger.

`decide` (in `_controller`) is pure; this module is its side of the world. One look at a running test
(`check_test`) is:

1. read the test's arms: opinions tagged `metadata.ab_test_id`, joined with their latest trusted
   feedback by `hive_assets.data.latest_trusted_feedback` (the join collection uses) as known at the end
   of each unit's feedback window (frozen there), turned into per-step counts by `tally`;
2. `decide`;
3. ONE update of the test's document: the check (with its statistics) appended, and for a decision
   that moves traffic the new traffic step, status and end. This single write is the state: a
   process killed before it leaves nothing; after it, everything else follows from the document.
   A final decision (promotion, rollback, end) is first recorded as an intent (`decision_intents`,
   id `ab-outcome:<test_id>`, holding this update), so a crash anywhere from here on leaves an
   unfinished decision that the next look, any operator command for the specialist, or the A/B
   sensor's resume request completes first (`complete_unfinished`); the intent is marked done once
   every effect below is in place;
4. the effects the document implies (`settle`), each written only when missing, so a retry, a
   resumed process or the next look completes what a crash interrupted: registry aliases, the split
   mirrored to registered-model tags, and one ledger row per traffic step / promotion / rollback /
   closure under a deterministic decision id.

Every time comes from `now` (the injectable clock); nothing here reads the wall clock except the
ledger's `recorded_at`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from hive_assets import registry
from hive_assets.config import Settings
from hive_assets.data import TrustPolicy, is_number, latest_trusted_feedback, to_utc
from hive_assets.review import without_active_labels
from hive_assets.data.store.base import DocumentStore
from hive_assets.rollout._controller import (
    END_FUTILE, END_MAX_DURATION, PROMOTE, ROLLBACK, Decision, RolloutPolicy, StepCounts, TestState, TrafficStep,
    decide, tally,
)
from hive_assets.rollout._records import RUNNING, SUPERSEDED, open_test, running_test
from hive_assets.routing import CHALLENGER, CHAMPION

PROMOTED = "promoted"
ROLLED_BACK = "rolled_back"
ENDED = "ended"      # maximum duration reached without a verdict, or promotion out of reach: champion kept
STOPPED = "stopped"  # an operator stopped it: champion kept
CLOSED = frozenset({PROMOTED, ROLLED_BACK, ENDED, STOPPED, SUPERSEDED})
_STATUS_OF = {PROMOTE: PROMOTED, ROLLBACK: ROLLED_BACK, END_MAX_DURATION: ENDED, END_FUTILE: ENDED}


def policy_from_env(**overrides: Any) -> RolloutPolicy:
    """`RolloutPolicy` with the documented environment variables (README "A/B testing"); keyword
    overrides (e.g. from run config) win. Unset means the SPEC defaults."""

    settings = Settings.from_env()  # malformed values are a ConfigError naming the variable
    values: dict[str, Any] = {
        "start_traffic": settings.ab_test_default_traffic,
        "label_maturity": timedelta(hours=settings.ab_test_label_maturity_hours),
        "max_duration": timedelta(days=settings.ab_test_max_duration_days),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(RolloutPolicy(), **values)


# -- reading the arms -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArmObservations:
    """One row per served unit of a test (opinions with `metadata.ab_test_id`), with its label if any."""

    served_at: np.ndarray       # datetime64[us], naive UTC
    is_challenger: np.ndarray   # bool
    confidence: np.ndarray      # float
    agrees: np.ndarray          # bool (meaningless without a label)
    labelled_at: np.ndarray     # datetime64[us], NaT without a label


def test_opinions_filter(test: dict[str, Any]) -> dict[str, Any]:
    """The store filter of a test's units: the specialist's opinions tagged with its id, served from its first
    traffic step on. `metadata.ab_test_id` has no index (and FerretDB 1.x pushes no dotted field down):
    alone it read every opinion of the specialist, 0.13-0.17 s a look at 69-100k of them and growing with
    history. The time bound lets both stores' (specialist_type, evaluated_at) index read only the test's
    period; it removes no unit a look counts (`tally` ignores units served before the first step)."""
    where: dict[str, Any] = {"specialist_type": test["specialist_type"], "metadata.ab_test_id": test["test_id"]}
    history = test.get("traffic_history") or []
    starts = [t for t in (to_utc(test.get("started_at")), to_utc(history[0]["at"]) if history else None) if t]
    if starts:
        where["evaluated_at"] = {"$gte": min(starts)}
    return where


def arm_observations(store: DocumentStore, test: dict[str, Any], now: datetime,
                     trust: TrustPolicy = TrustPolicy(), maturity: timedelta | None = None) -> ArmObservations:
    """The test's served units, each with its latest trusted label as known at min(now, served + maturity).

    Feedback submitted after `now` is invisible (the join drops it as `submitted_after_window`), so a
    simulated clock sees exactly what production would have seen then. With `maturity`, a unit's label
    is frozen at the end of its window: a correction submitted later neither changes nor removes it, so
    the matured counts only grow between looks. A confidence that is missing or not a number is NaN
    (`tally` excludes it from the mean and counts it), never 0.
    """
    opinions, served_at = [], []
    for o in store.find("specialist_opinions", test_opinions_filter(test)):
        served = to_utc(o.get("evaluated_at"))
        if isinstance(o.get("opinion"), dict) and served is not None:
            opinions.append(o)
            served_at.append(served)
    ids = [str(o["opinion_id"]) for o in opinions]
    as_of = None if maturity is None else {oid: min(now, t + maturity) for oid, t in zip(ids, served_at)}
    labels, _, _ = latest_trusted_feedback(store, ids, now, trust, as_of=as_of)
    # labels a review queue chose for the arms' disagreement would bias the comparison: random/organic only
    labels = without_active_labels(store, test["specialist_type"], labels)
    challenger, confidence, agrees, labelled = [], [], [], []
    for o, oid in zip(opinions, ids):
        challenger.append((o.get("metadata") or {}).get("ab_arm") == CHALLENGER)
        # missing or not a number: NaN (range is `tally`'s check)
        score = o["opinion"].get("confidence_score")
        confidence.append(float(score) if is_number(score) else math.nan)
        fb = labels.get(oid)
        agrees.append(fb is not None and fb["human_recommendation"] == o["opinion"].get("recommendation"))
        labelled.append(fb["_submitted"].replace(tzinfo=None) if fb is not None else None)
    return ArmObservations(np.array([t.replace(tzinfo=None) for t in served_at], dtype="datetime64[us]"),
                           np.array(challenger, dtype=bool),
                           np.array(confidence, dtype=float), np.array(agrees, dtype=bool),
                           np.array([np.datetime64("NaT") if t is None else t for t in labelled],
                                    dtype="datetime64[us]"))


def state_of(test: dict[str, Any]) -> TestState:
    """`TestState` of an `ab_tests` document as either store returns it (datetimes or ISO text)."""
    return TestState(to_utc(test["started_at"]),
                     tuple(TrafficStep(to_utc(h["at"]), float(h["percent"])) for h in test["traffic_history"]))


def evaluate(store: DocumentStore, test: dict[str, Any], now: datetime, policy: RolloutPolicy,
             trust: TrustPolicy = TrustPolicy()) -> tuple[Decision, list[StepCounts]]:
    """The controller's decision for a running test at `now`, and the per-step counts behind it."""
    state = state_of(test)
    obs = arm_observations(store, test, now, trust, policy.label_maturity)
    counts = tally(obs.served_at, obs.is_challenger, obs.confidence, obs.agrees, obs.labelled_at, state, now,
                   policy.label_maturity)
    return decide(state, counts, now, policy), counts


# -- the one state write per look -------------------------------------------------------------------
def _same_instant(a: Any, b: datetime) -> bool:
    return to_utc(a) == b


def outcome_intent_id(test_id: str) -> str:
    return f"ab-outcome:{test_id}"


def policy_record(policy: RolloutPolicy) -> dict[str, Any]:
    """The policy as a look records it: every field, durations in hours (`label_maturity_hours`, ...)."""
    out: dict[str, Any] = {}
    for f in fields(policy):
        value = getattr(policy, f.name)
        if isinstance(value, timedelta):
            out[f"{f.name}_hours"] = value.total_seconds() / 3600
        else:
            out[f.name] = value
    return out


def record_decision_in_test(store: DocumentStore, test: dict[str, Any], decision: Decision, now: datetime,
                            counts: list[StepCounts], dagster_run_id: str | None = None,
                            actor: str | None = None, policy: RolloutPolicy | None = None) -> dict[str, Any]:
    """Append the look at `now` to the test's document in one update (idempotent per check time:
    a second look at the same `now` writes nothing). Returns the document as stored. `policy`: the rule's
    constants the look decided with, recorded with it (`policy_record`)."""
    now = now.astimezone(timezone.utc)
    if any(_same_instant(c.get("at"), now) for c in test.get("checks", [])):
        return test
    check = {"at": now, "action": decision.action, "rule": decision.rule, "reason": decision.reason,
             "traffic_percent": decision.traffic_percent, "statistics": decision.statistics,
             "steps": [{"champion": c.champion.as_dict(), "challenger": c.challenger.as_dict()} for c in counts],
             "dagster_run_id": dagster_run_id}
    if policy is not None:
        # a sceptic recounting this look needs every constant it used (the label maturity above all: a
        # home's settings can change after the look)
        check["policy"] = policy_record(policy)
    fields: dict[str, Any] = {"checks": [*test.get("checks", []), check], "last_check_at": now,
                              "verdict": decision.action, "last_statistics": decision.statistics}
    if decision.traffic_percent != float(test["traffic_percent"]):
        fields["traffic_percent"] = decision.traffic_percent
        fields["traffic_history"] = [*test["traffic_history"],
                                     {"at": now, "percent": decision.traffic_percent, "reason": decision.reason,
                                      "rule": decision.rule}]
    if decision.final:
        fields.update(status=_STATUS_OF[decision.action], ended_at=now, end_reason=decision.reason)
        # intent before effect: what this look decided, enough to apply it again from scratch
        registry.begin_intent(store, outcome_intent_id(test["test_id"]), test["specialist_type"], registry.AB_OUTCOME,
                              {"test_id": test["test_id"], "action": decision.action, "fields": fields},
                              actor=actor or f"dagster:{dagster_run_id}", dagster_run_id=dagster_run_id)
    if not store.update_one("ab_tests", {"test_id": test["test_id"], "status": RUNNING}, fields):
        # closed meanwhile (an operator's stop): the stored document is the truth
        return store.find_one("ab_tests", {"test_id": test["test_id"]}) or test
    return {**test, **fields}


def set_traffic(store: DocumentStore, test: dict[str, Any], percent: float, now: datetime, reason: str,
                actor: str) -> dict[str, Any]:
    """An operator's traffic change (expand): a new traffic step in the document, nothing else."""
    if test["status"] != RUNNING:
        raise ValueError(f"test {test['test_id']} is {test['status']}, not running")
    if not float(test["traffic_percent"]) < percent < 100.0:
        raise ValueError(f"traffic can only grow (monotone routing) and stays below 100 % (no champion arm is "
                         f"left there; a promotion takes it to 100): {float(test['traffic_percent']):g} % -> "
                         f"{percent:g} % is not in ({float(test['traffic_percent']):g}, 100)")
    now = operator_instant(test, now, "an expand")
    fields = {"traffic_percent": float(percent),
              "traffic_history": [*test["traffic_history"], {"at": now, "percent": float(percent),
                                                             "reason": reason, "rule": "operator", "actor": actor}]}
    store.update_one("ab_tests", {"test_id": test["test_id"]}, fields)
    return {**test, **fields}


def close_test(store: DocumentStore, test: dict[str, Any], status: str, now: datetime, reason: str) -> dict[str, Any]:
    """Close a running test (an operator's stop): traffic 0 from `now`, champion kept."""
    if test["status"] != RUNNING:
        return test
    now = operator_instant(test, now, "a stop")
    fields = {"status": status, "ended_at": now, "end_reason": reason, "traffic_percent": 0.0, "verdict": status,
              "traffic_history": [*test["traffic_history"], {"at": now, "percent": 0.0, "reason": reason,
                                                             "rule": status}]}
    if not store.update_one("ab_tests", {"test_id": test["test_id"], "status": RUNNING}, fields):
        return store.find_one("ab_tests", {"test_id": test["test_id"]}) or test
    return {**test, **fields}


def stop_if_arms_changed(client, store: DocumentStore, specialist: str, now: datetime, *, actor: str,
                         dagster_run_id: str | None = None) -> tuple[dict[str, Any] | None, list[str]]:
    """Stop the specialist's running test when the registry no longer holds what it compares: `champion`
    moved off the version the test opened against (an operator's promote, rollback or alias move, here
    or in MLflow's UI: its champion arm is then served by a model the counts are not about, and a verdict
    would compare the challenger with a model that no longer serves), the challenger version was
    deleted (every look failed on its missing version), its `challenger` alias removed by hand (serving
    stopped routing to it; the test would have ended on the sample-ratio check), or moved to a version
    tested before (no look opens a second test of it to supersede this one). Champion kept, the test's
    challenger alias removed (an alias moved elsewhere stays), the reason in the test and the ledger.
    Returns (the stopped test or None, the effects written)."""
    test = running_test(store, specialist)
    if test is None:
        return None, []
    reason = _why_arms_changed(client, store, specialist, str(test["champion_version"]),
                               str(test["challenger_version"]))
    if reason is None:
        return None, []
    # the registry changed already: recorded no earlier than the test's own history (a clock behind it)
    latest = _latest_event(test)[0]
    closed = close_test(store, test, STOPPED, max(now, latest) if latest else now, reason)
    return closed, [f"stopped:{test['test_id']}", *settle(client, store, closed, actor=actor,
                                                           dagster_run_id=dagster_run_id)]


def _why_arms_changed(client, store: DocumentStore, specialist: str, champion: str, challenger: str) -> str | None:
    from hive_assets.registry import alias_version, model_version

    compared = f"the test compared v{challenger} with v{champion}"
    holder = alias_version(client, specialist, CHAMPION)
    if holder is None:
        return f"no version holds champion any more ({compared}): stopped without a verdict"
    if str(holder.version) != champion:
        return (f"champion moved to v{holder.version} outside the test, which compared v{challenger} with "
                f"v{champion}: stopped without a verdict, v{holder.version} stays champion")
    holder = alias_version(client, specialist, CHALLENGER)
    if holder is not None and str(holder.version) not in (champion, challenger):
        # on another version: the next look opens its test, which supersedes this one, unless that version
        # was tested before (the look opens no second test of it): then this test would run on unserved
        # (the router splits only to the tagged challenger) and expand on old labels (audit, stop 51)
        before = store.find_one("ab_tests", {"specialist_type": specialist, "status": {"$ne": RUNNING},
                                             "challenger_version": str(holder.version)}, sort=[("started_at", -1)])
        if before is None:
            return None
        return (f"the {CHALLENGER} alias was moved to v{holder.version} outside the test ({compared}; serving "
                f"stopped routing to v{challenger}), a version tested before ({before['test_id']}, "
                f"{before['status']}): no test of it opens by itself; stopped without a verdict")
    if holder is not None and str(holder.version) != champion:  # the test's own challenger
        return None
    if holder is None and model_version(client, specialist, challenger) is None:  # deleting drops its aliases
        return f"challenger v{challenger} was deleted from the registry ({compared}): stopped without a verdict"
    moved = "removed from" if holder is None else "moved to the champion from"
    return (f"the {CHALLENGER} alias was {moved} v{challenger} outside the test ({compared}; serving stopped "
            "routing to it): stopped without a verdict")


# -- effects that follow from the document ----------------------------------------------------------
def _model_name(specialist: str) -> str:
    from hive_assets.registry import model_name

    return model_name(specialist)


def _remove_alias(client, specialist: str, alias: str, version: str) -> bool:
    """Delete `alias` if it still points at `version` (never an alias someone moved since)."""
    from hive_assets.registry import alias_version

    current = alias_version(client, specialist, alias)
    if current is None or str(current.version) != str(version):
        return False
    client.delete_registered_model_alias(_model_name(specialist), alias)
    return True


def _set_alias(client, specialist: str, alias: str, version: str) -> bool:
    from hive_assets.registry import alias_version

    current = alias_version(client, specialist, alias)
    if current is not None and str(current.version) == str(version):
        return False
    client.set_registered_model_alias(_model_name(specialist), alias, str(version))
    return True


def settle(client, store: DocumentStore, test: dict[str, Any], *, actor: str,
           dagster_run_id: str | None = None, after_step=None, completed_by: str | None = None,
           now: datetime | None = None) -> list[str]:
    """Bring the registry, its tags and the ledger in line with the test's document. Idempotent: each
    effect is written only when missing. Returns what it changed (empty when all was in place).

    running: `ab-test-v<N>` on the challenger, split mirrored to tags, a ledger row per traffic step.
    promoted: champion -> challenger (only if it still holds the test's champion), challenger and
    `ab-test-v<N>` aliases removed. rolled_back / ended / stopped: challenger and `ab-test-v<N>`
    removed (the version is kept). superseded: `ab-test-v<N>` removed. Every closed test gets an
    `ab_test_closed` row; promotion and rollback also their own row. `now`: the caller's instant, when it
    has one (a row it writes for a test opened before then says so).
    """
    from hive_assets.registry import (
        ab_test_alias, alias_version, ensure_alias, mirror_ab_split, model_version, record_decision,
    )

    specialist, test_id = test["specialist_type"], test["test_id"]
    challenger, champion = str(test["challenger_version"]), str(test["champion_version"])
    status = test["status"]
    done: list[str] = []

    @functools.cache
    def snapshot() -> str | None:
        """The challenger's data snapshot hash (its tag), read once when a row needs it; None once deleted."""
        version = model_version(client, specialist, challenger)
        return (version.tags or {}).get("data_snapshot_hash") if version is not None else None

    def ledger(kind: str, decision_id: str, reason: str, details: dict[str, Any]) -> None:
        if not store.count("model_decisions", {"decision_id": decision_id}):
            record_decision(store, specialist, kind, actor=actor, reason=reason, dagster_run_id=dagster_run_id,
                            model_version=challenger, data_snapshot_hash=snapshot(),
                            details={"test_id": test_id, **details}, decision_id=decision_id)
            done.append(f"ledger:{kind}:{decision_id}")

    if status == RUNNING:
        if _set_alias(client, specialist, ab_test_alias(challenger), challenger):
            done.append(f"alias:{ab_test_alias(challenger)}")
        # like every alias move, in the ledger (`deploy history --alias ab-test-vN`); the tenure ends at the
        # test's `ab_test_closed` row (alias_history). Only while running: a row written at a closed test's
        # settling would start a tenure after its end.
        ledger("alias_move", opening_row_id(test_id), _opened_reason(test, now),
               {"alias": ab_test_alias(challenger), "previous_version": None, "at": _iso(test.get("started_at"))})
    if status == PROMOTED:
        holder = alias_version(client, specialist, CHAMPION)
        if holder is None or str(holder.version) in (champion, challenger):
            # the registry's crash-safe move: alias, Production mirror when enabled, then the ledger row
            moved = ensure_alias(client, store, specialist, CHAMPION, challenger, kind="promotion", actor=actor,
                                 reason=test.get("end_reason") or "A/B test promoted the challenger",
                                 dagster_run_id=dagster_run_id,
                                 details={"test_id": test_id, "at": _iso(test.get("ended_at"))},
                                 after_step=after_step)
            done += [f"alias:{CHAMPION}->{challenger}"] * moved["moved"] + ["ledger:promotion"] * moved["recorded"]
    if status in CLOSED - {SUPERSEDED} and _remove_alias(client, specialist, CHALLENGER, challenger):
        done.append(f"removed:{CHALLENGER}")
    if status in CLOSED and _remove_alias(client, specialist, ab_test_alias(challenger), challenger):
        done.append(f"removed:{ab_test_alias(challenger)}")
    if status == ROLLED_BACK:
        ledger("rollback", f"ab-rollback:{test_id}", test.get("end_reason") or "A/B test rolled back",
               {"traffic_percent": 0.0, "challenger_alias_removed": True, "at": _iso(test.get("ended_at"))})

    # the split serving reads: the test's traffic while it runs, 0 once it is closed (promotion moved
    # champion to the challenger, so every unit is served by it anyway)
    if status == RUNNING or _mirrors(client, specialist, test_id):
        shown = {**test, "traffic_percent": float(test["traffic_percent"]) if status == RUNNING else 0.0}
        before = client.get_registered_model(_model_name(specialist)).tags
        mirror_ab_split(client, specialist, shown)
        if before.get("ab_test_status") != status:
            client.set_registered_model_tag(_model_name(specialist), "ab_test_status", status)
        if before.get("ab_challenger_traffic_percent") != str(shown["traffic_percent"]) or \
                before.get("ab_test_id") != test_id or before.get("ab_test_status") != status:
            done.append("tags")

    for i, step in enumerate(test["traffic_history"]):
        ledger("traffic_step", traffic_row_id(test_id, i),
               step.get("reason") or "traffic step",
               {"traffic_percent": float(step["percent"]), "at": _iso(step["at"]), "rule": step.get("rule")})
    if status in CLOSED:
        ledger("ab_test_closed", f"ab-closed:{test_id}", test.get("end_reason") or status,
               {"status": status, "at": _iso(test.get("ended_at"))})
        if not test.get("settled"):
            store.update_one("ab_tests", {"test_id": test_id}, {"settled": True})
        registry.finish_intent(store, outcome_intent_id(test_id), {"status": status, "effects": done},
                               completed_by=completed_by)
    return done


def opening_row_id(test_id: str) -> str:
    """The ledger row of the test's `ab-test-v<N>` alias (written while it runs)."""
    return f"ab-alias:{test_id}"


def traffic_row_id(test_id: str, step: int) -> str:
    """The ledger row of the test's traffic step `step` (0: its opening)."""
    return f"ab-open:{test_id}" if step == 0 else f"ab-step:{test_id}:{step}"


def _mirrors(client, specialist: str, test_id: str) -> bool:
    """Whether the registered-model tags still describe this test (a newer test owns them otherwise)."""
    return client.get_registered_model(_model_name(specialist)).tags.get("ab_test_id") == test_id


def _iso(value: Any) -> str | None:
    t = to_utc(value)
    return t.isoformat() if t else None


def _opened_reason(test: dict[str, Any], now: datetime | None) -> str:
    """The reason of the `ab-alias:` row. Written late, when an action after the opening finds it missing (a
    test opened by a release that wrote no such row, or an opening cut short), it says when the test opened:
    the row's time is the later action's, not the opening's."""
    started = to_utc(test.get("started_at"))
    later = [t for t in (to_utc(now), *(to_utc(c.get("at")) for c in test.get("checks", []))) if t is not None]
    if started is None or not any(t > started for t in later):
        return f"A/B test {test['test_id']} opened"
    return (f"A/B test {test['test_id']} opened at {started:%Y-%m-%d %H:%M} UTC; recorded after the fact (the "
            "opening wrote no row: an older release, or a run cut short)")


def settle_closed(client, store: DocumentStore, specialist: str, *, actor: str,
                  dagster_run_id: str | None = None) -> list[str]:
    """Finish the effects of closed tests that a crash left unsettled (e.g. superseded by a new test)."""
    done: list[str] = []
    for test in store.find("ab_tests", {"specialist_type": specialist}):
        if test["status"] in CLOSED and not test.get("settled"):
            done += settle(client, store, test, actor=actor, dagster_run_id=dagster_run_id)
    return done


# -- the operations -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    test: dict[str, Any] | None   # the document after the look (None: no test for this specialist)
    decision: Decision | None     # None when the test was not running or this `now` was already checked
    counts: list[StepCounts]
    effects: list[str]

    def summary(self) -> dict[str, Any]:
        """Status, traffic, verdict, per-arm agreement / confidence / counts / coverage, the interval."""
        if self.test is None:
            return {"status": "no_test", "test_id": None}
        t = self.test
        out: dict[str, Any] = {"test_id": t["test_id"], "status": t["status"],
                               "traffic_percent": float(t["traffic_percent"]),
                               "champion_version": str(t["champion_version"]),
                               "challenger_version": str(t["challenger_version"]),
                               "started_at": _iso(t["started_at"]), "verdict": t.get("verdict") or "insufficient_data"}
        stats = self.decision.statistics if self.decision else t.get("last_statistics") or {}
        if self.decision:
            out["rule"], out["reason"] = self.decision.rule, self.decision.reason
        if t["status"] != RUNNING:  # how it ended, for every later look (a stop's reason is in no decision)
            out["ended_at"], out["end_reason"] = _iso(t.get("ended_at")), t.get("end_reason")
        for arm in (CHAMPION, CHALLENGER):
            out[arm] = stats.get(arm)
        diff = stats.get("difference")
        out["interval"] = [diff["lower"], diff["upper"]] if diff else None
        out["difference"] = diff["estimate"] if diff else None
        out["days_elapsed"] = stats.get("days_elapsed")
        out["srm_p_value"] = (stats.get("srm") or {}).get("p_value")
        return out


# Hosts' clocks disagree a little: a look this close behind the latest one is that look, not the clock going back.
CLOCK_SKEW = timedelta(minutes=5)


class LookBeforeLastLook(ValueError):
    """A look asked for at a platform time before the running test's latest look (or its start): the clock
    was pinned back. Recording it would put the test's history out of order, and its counts would leave out
    what the test has already seen, so no look is taken."""


def _latest_look(test: dict[str, Any]) -> tuple[datetime | None, str]:
    looks = [t for t in (to_utc(c.get("at")) for c in test.get("checks", [])) if t is not None]
    if looks:
        return max(looks), "latest look"
    return to_utc(test.get("started_at")), "start"


def _latest_event(test: dict[str, Any]) -> tuple[datetime | None, str]:
    """The test's latest recorded instant (its start, a look or a traffic step) and what it was."""
    events = [(to_utc(step.get("at")), "latest traffic step") for step in test.get("traffic_history", [])]
    events = [e for e in [_latest_look(test), *events] if e[0] is not None]  # a tie names the look
    return max(events, key=lambda e: e[0]) if events else (None, "start")


def _not_before(specialist: str, test_id: str, now: datetime, latest: datetime | None, what: str,
                verb: str) -> datetime:
    """`now` (UTC), or `latest` when `now` is within CLOCK_SKEW before it (another host's clock); ValueError,
    naming both instants, when it is further back."""
    now = now.astimezone(timezone.utc)
    if latest is None or now >= latest:
        return now
    if now < latest - CLOCK_SKEW:
        raise ValueError(f"{specialist}: {verb} at {now:%Y-%m-%d %H:%M} UTC is before the {what} of A/B test "
                         f"{test_id} ({latest:%Y-%m-%d %H:%M} UTC): a test's history cannot be rewritten; nothing "
                         "was changed")
    return latest


def operator_instant(test: dict[str, Any], now: datetime, verb: str) -> datetime:
    """The instant an operator's change (an expand, a stop) is recorded at: `now`, or the test's latest event
    when `now` is within CLOCK_SKEW before it; ValueError when it is further back (a `--now` in the past): a
    traffic step before looks already taken made the next look's sample-ratio check see a mismatch and roll the
    test back, and a stop before the start ended a test before it began."""
    return _not_before(test["specialist_type"], test["test_id"], now, *_latest_event(test), verb)


def opening_instant(store: DocumentStore, specialist: str, now: datetime) -> datetime:
    """The instant an operator's new test opens at: as `operator_instant`, against the specialist's latest test
    (its looks and traffic steps, its start, its end): a test opened a week back began before the champion it
    compared with won its test, its maximum duration mostly spent, and a running test it supersedes would end
    before its own latest look."""
    latest = store.find_one("ab_tests", {"specialist_type": specialist}, sort=[("started_at", -1)])
    if latest is None:
        return now.astimezone(timezone.utc)
    events = [(to_utc(latest.get("ended_at")), "end"), _latest_event(latest)]  # a tie names the end
    last, what = max(((t, w) for t, w in events if t is not None), key=lambda e: e[0], default=(None, ""))
    return _not_before(specialist, latest["test_id"], now, last, what, "a start")


def check_test(client, store: DocumentStore, specialist: str, now: datetime, policy: RolloutPolicy, *,
               actor: str, dagster_run_id: str | None = None, trust: TrustPolicy = TrustPolicy(),
               after_step=None) -> CheckResult:
    """One look at the specialist's running test (re-evaluate, record, apply). It first completes any
    unfinished decision of the specialist; without a running test, it settles what closed tests left and
    reports the latest test. `after_step` is `ensure_alias`'s hook, for crash tests."""
    now = now.astimezone(timezone.utc)
    effects = complete_unfinished(client, store, specialist, actor=actor, dagster_run_id=dagster_run_id)
    effects += settle_closed(client, store, specialist, actor=actor, dagster_run_id=dagster_run_id)
    effects += stop_if_arms_changed(client, store, specialist, now, actor=actor, dagster_run_id=dagster_run_id)[1]
    test = running_test(store, specialist)
    if test is None:
        latest = store.find_one("ab_tests", {"specialist_type": specialist}, sort=[("started_at", -1)])
        return CheckResult(latest, None, [], effects)
    decision, counts = None, []
    latest, what = _latest_look(test)
    if latest is not None and now < latest:
        if now < latest - CLOCK_SKEW:
            raise LookBeforeLastLook(
                f"{specialist}: the platform clock ({now:%Y-%m-%d %H:%M} UTC) is before the {what} of A/B test "
                f"{test['test_id']} ({latest:%Y-%m-%d %H:%M} UTC): a look cannot go back in time, none was taken "
                "(`hive clock` shows the clock; advance it past that time)")
        now = latest  # another host's clock a little ahead: the same look, nothing new to see
    if not any(_same_instant(c.get("at"), now) for c in test.get("checks", [])):
        decision, counts = evaluate(store, test, now, policy, trust)
        test = record_decision_in_test(store, test, decision, now, counts, dagster_run_id, actor=actor, policy=policy)
    effects += settle(client, store, test, actor=actor, dagster_run_id=dagster_run_id, after_step=after_step)
    return CheckResult(test, decision, counts, effects)


def complete_unfinished(client, store: DocumentStore, specialist: str, *, actor: str,
                        dagster_run_id: str | None = None) -> list[str]:
    """Complete every unfinished decision of the specialist, oldest first: A/B outcomes here (the test's
    recorded update, then its effects), promotions and rollbacks by the registry. Each is applied with the
    actor and run that decided it. Returns what was completed."""
    done: list[str] = []
    by = f"{actor} (run {dagster_run_id})" if dagster_run_id else actor
    for intent in registry.unfinished_intents(store, specialist):
        if intent["operation"] != registry.AB_OUTCOME:
            registry.complete_intent(client, store, intent, completed_by=by)
            done.append(f"completed:{intent['intent_id']}")
            continue
        p = intent["params"]
        test = store.find_one("ab_tests", {"test_id": p["test_id"]})
        if test is None:  # nothing to apply it to: the record is gone
            registry.finish_intent(store, intent["intent_id"], {"status": "test missing"}, completed_by=by)
            continue
        if test["status"] == RUNNING:  # the crash came before the test's update: apply it now
            store.update_one("ab_tests", {"test_id": p["test_id"], "status": RUNNING}, p["fields"])
            test = store.find_one("ab_tests", {"test_id": p["test_id"]}) or test
        done += settle(client, store, test, actor=intent["actor"], dagster_run_id=intent["dagster_run_id"],
                       completed_by=by)
        registry.finish_intent(store, intent["intent_id"], {"status": test["status"]}, completed_by=by)
        done.append(f"completed:{intent['intent_id']}")
    return done


def start_test(client, store: DocumentStore, specialist: str, champion_version: str, challenger_version: str,
               traffic_percent: float, now: datetime, *, actor: str, dagster_run_id: str | None = None,
               ) -> tuple[dict[str, Any], bool, list[str]]:
    """Open (or find) the test of `challenger_version` against `champion_version` and write whatever of
    its effects is missing; a test it supersedes is closed and settled. Returns (test, created, effects).

    The challenger alias is the registration's (or `move_alias`'s) to set; this checks it is there.
    """
    from hive_assets.registry import alias_version

    holder = alias_version(client, specialist, CHALLENGER)
    if holder is None or str(holder.version) != str(challenger_version):
        raise ValueError(f"{_model_name(specialist)}: alias {CHALLENGER} is on "
                         f"{'no version' if holder is None else 'v' + str(holder.version)}, not v{challenger_version}")
    test, created = open_test(store, specialist, champion_version, challenger_version, traffic_percent, now=now,
                              dagster_run_id=dagster_run_id)
    effects = settle_closed(client, store, specialist, actor=actor, dagster_run_id=dagster_run_id)
    effects += settle(client, store, test, actor=actor, dagster_run_id=dagster_run_id, now=now)
    return test, created, effects
