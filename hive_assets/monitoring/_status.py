"""What each specialist is doing, in one view (`hive status`, and the `platform_status` observation in the UI).

Read from the records the platform keeps, never from a process's memory: the registry aliases (champion,
challenger), the decision ledger (since when and why the champion holds its alias), `ab_tests` (the running
test's traffic and its latest always-valid estimate), `drift_monitoring` (the last verdict),
`specialist_feedback` (trusted feedback since the last training, against the threshold; when it is reached,
why the feedback sensor holds: the data collected since the last training could not train, or an A/B test
runs and it waits for the verdict) and
`retraining_triggers` (the last retrain: what triggered it, how it ended), `review_requests` (the review
queue on the platform clock's UTC day, the period of its budget). The next scheduled look is
the earliest of the next drift check and the next A/B look on the platform clock (both sensors skip until
then; the feedback sensor counts at every tick).

The last training's time comes from the caller (the wiring reads it from the Dagster instance), so this
module stays free of Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from hive_assets.data import DocumentStore, TrustPolicy, to_utc
from hive_assets.monitoring._check import next_drift_check
from hive_assets.monitoring._feedback import trusted_feedback_count
from hive_assets.monitoring._records import DRIFT_CHECKS, TRIGGERS, held_reason
from hive_assets.monitoring._triggers import UntrainableData, waits_for_test

__all__ = ["SpecialistStatus", "format_status", "platform_status", "status_markdown"]


@dataclass(frozen=True)
class SpecialistStatus:
    specialist: str
    champion: str | None = None
    champion_since: datetime | None = None
    champion_why: str | None = None          # the ledger row's kind and reason (by whom)
    challenger: str | None = None
    test_id: str | None = None
    traffic_percent: float | None = None     # the challenger's share while a test runs
    ab_estimate: float | None = None         # challenger - champion agreement, latest look
    ab_interval: tuple[float, float] | None = None
    ab_verdict: str | None = None            # the latest look's verdict, or the last test's end
    ab_waiting_for: str | None = None        # insufficient_data, or no interval yet: the last look's reason
    ab_provisional: bool = False             # the interval is of every label known so far, not of matured ones
    drift_decision: str | None = None
    drift_score: float | None = None
    drift_checked_at: datetime | None = None
    drift_window_rows: int | None = None     # the last check's window, and the rows it needs to decide
    drift_min_rows: int | None = None
    drift_held: str | None = None            # why the last check's drift requested no retrain (the sensor's reason)
    feedback_since_training: int = 0
    feedback_threshold: int = 0
    feedback_held: str | None = None         # why a reached threshold requests no retrain now (an A/B test runs)
    last_training_at: datetime | None = None
    retrain_reason: str | None = None        # feedback | drift | manual
    retrain_status: str | None = None        # pending | running | completed | failed
    retrain_at: datetime | None = None
    retrain_run_id: str | None = None
    retrain_error: str | None = None         # failed: why (the failed check or step, as the trigger recorded it)
    next_look_at: datetime | None = None
    next_look: str | None = None             # what happens then
    review_queue: dict | None = None         # today's requests: requested, answered, expired; open now

    def as_dict(self) -> dict:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
        out["ab_interval"] = list(self.ab_interval) if self.ab_interval else None
        return out


def _champion(store: DocumentStore, client, specialist: str) -> dict:
    from hive_assets import registry

    version = registry.alias_version(client, specialist, registry.CHAMPION)
    challenger = registry.alias_version(client, specialist, registry.CHALLENGER)
    out = {"champion": str(version.version) if version else None,
           "challenger": str(challenger.version) if challenger else None}
    tenure = registry.alias_history(store, specialist, registry.CHAMPION)
    if version is not None and tenure and tenure[-1].version == out["champion"]:
        held = tenure[-1]
        why = f"{held.kind}: {held.reason}" if held.reason else held.kind
        out.update(champion_since=held.since, champion_why=f"{why} ({held.actor})" if held.actor else why)
    elif tenure:  # the ledger's last holder is not the registry's: moved or removed outside the platform (MLflow UI)
        promote = f"`hive deploy promote --specialist {specialist} --model-version N`"
        # the platform's own decision cut between its alias write and its ledger row: not "outside the platform"
        cut = [i for i in registry.interrupted_intents(store, specialist)
               if version is not None and i["operation"] in (registry.PROMOTE_INTENT, registry.ROLLBACK_INTENT)
               and i["target"] == f"v{version.version}"]
        if cut:
            registry_says = (f"v{version.version}: moved by a {cut[-1]['operation']} of {cut[-1]['actor']} at "
                             f"{cut[-1]['since']} that was interrupted before its ledger row (`hive doctor --fix`, "
                             "or the next registry or A/B command for it, completes it)")
        elif version is not None:
            registry_says = (f"v{version.version}: the alias was moved outside the platform ({promote} records the "
                             "one to keep)")
        else:
            registry_says = ("none: its alias or version was removed outside the platform; a new serving pod has "
                             f"nothing to serve (a retrain or {promote} sets one)")
        out["champion_why"] = f"the ledger's champion is v{tenure[-1].version}, but the registry names {registry_says}"
    return out


def _ab(store: DocumentStore, specialist: str, interval: timedelta) -> dict:
    from hive_assets.rollout import RUNNING, next_look

    test = store.find_one("ab_tests", {"specialist_type": specialist}, sort=[("started_at", -1)])
    if test is None:
        return {}
    stats = test.get("last_statistics") or {}
    # the matured labels' interval, else the one of every label known so far (what the expansion gates read:
    # the view showed a bare "expand" beside the timeline's interval for that look)
    diff, provisional = stats.get("difference"), False
    if not diff and stats.get("provisional_difference"):
        diff, provisional = stats["provisional_difference"], True
    out = {"test_id": test["test_id"], "ab_verdict": test.get("verdict") or "insufficient_data"}
    if (out["ab_verdict"] == "insufficient_data" or not diff) and test.get("checks"):  # how far from a decision
        out["ab_waiting_for"] = test["checks"][-1].get("reason")
    if diff:
        out.update(ab_estimate=float(diff["estimate"]), ab_interval=(float(diff["lower"]), float(diff["upper"])),
                   ab_provisional=provisional)
    if test["status"] == RUNNING:
        out.update(traffic_percent=float(test["traffic_percent"]), next_ab_look=next_look(test, interval))
    else:
        out["ab_verdict"] = f"{test['status']} ({test.get('end_reason') or test.get('verdict') or 'ended'})"
    return out


def platform_status(store: DocumentStore, client, *, last_trained: Mapping[str, datetime | None],
                    feedback_threshold: int, drift_interval: timedelta, ab_interval: timedelta,
                    specialists: tuple[str, ...], now: datetime, trust: TrustPolicy = TrustPolicy(),
                    untrainable: Callable[[str], UntrainableData | None] | None = None) -> list[SpecialistStatus]:
    """One `SpecialistStatus` per specialist (module docstring). `last_trained`: each specialist's last
    training time (None: never trained, the feedback count then runs over all of history); `now`: the
    platform clock, for the review queue's day; `untrainable(specialist)`: a collection since the last training
    that could not train (it holds the feedback trigger), asked only of a specialist at the threshold (the
    status sensor builds this view every tick)."""
    from hive_assets.review import today_summary

    out = []
    for s in specialists:
        fields: dict = {"specialist": s, "feedback_threshold": int(feedback_threshold),
                        "last_training_at": last_trained.get(s)}
        fields.update(_champion(store, client, s))
        ab = _ab(store, s, ab_interval)
        next_ab = ab.pop("next_ab_look", None)
        fields.update(ab)
        drift = store.find_one(DRIFT_CHECKS, {"specialist_type": s}, sort=[("checked_at", -1)])
        if drift is not None:
            fields.update(drift_decision=drift["decision"], drift_score=drift.get("drift_score"),
                          drift_checked_at=to_utc(drift["checked_at"]), drift_held=held_reason(drift),
                          drift_window_rows=drift.get("window_size"), drift_min_rows=drift.get("min_rows"))
        fields["feedback_since_training"] = trusted_feedback_count(store, s, last_trained.get(s), trust)
        if fields["feedback_since_training"] >= feedback_threshold:  # why the sensor holds, as it logs it
            held = untrainable(s) if untrainable is not None else None
            if held is not None and (why := held.holds(feedback_threshold)):
                fields["feedback_held"] = f"held: {why}"
            elif fields.get("traffic_percent") is not None:
                fields["feedback_held"] = waits_for_test(fields["test_id"])
        trigger = store.find_one(TRIGGERS, {"specialist_type": s}, sort=[("triggered_at", -1)])
        if trigger is not None:
            fields.update(retrain_reason=trigger.get("reason"), retrain_status=trigger.get("status"),
                          retrain_at=to_utc(trigger["triggered_at"]), retrain_run_id=trigger.get("dagster_run_id"),
                          retrain_error=trigger.get("error") if trigger.get("status") == "failed" else None)
        looks = []
        next_drift = next_drift_check(store, s, drift_interval)
        if next_drift is not None and fields.get("champion"):
            looks.append((next_drift, "drift check"))
        if next_ab is not None:
            looks.append((next_ab, "A/B look"))
        if looks:
            fields["next_look_at"], fields["next_look"] = min(looks)
        fields["review_queue"] = today_summary(store, s, now, trust)  # the day the budget counts
        out.append(SpecialistStatus(**fields))
    return out


def _t(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at else "-"


def _rows(statuses: list[SpecialistStatus], now: datetime | None = None) -> list[list[str]]:
    rows = []
    for st in statuses:
        champion = f"v{st.champion} since {_t(st.champion_since)}" if st.champion else "none"
        challenger = (f"v{st.challenger} at {st.traffic_percent:g} %" if st.challenger and st.traffic_percent is not None
                      else f"v{st.challenger}" if st.challenger else "-")
        if st.ab_estimate is not None and st.ab_interval:
            ab = (f"{st.ab_estimate:+.3f} [{st.ab_interval[0]:+.3f}, {st.ab_interval[1]:+.3f}]"
                  + (" on the labels known so far" if st.ab_provisional else "") + f" {st.ab_verdict}")
        else:
            ab = st.ab_verdict or "no test"
        if st.ab_waiting_for:
            ab += f": {st.ab_waiting_for}"
        if st.drift_decision == "insufficient_data" and st.drift_window_rows is not None and st.drift_min_rows:
            # a PSI of a few rows is noise (3.11 on 18 rows): what the check lacked says more
            drift = (f"{st.drift_decision} ({st.drift_window_rows} of the {st.drift_min_rows} rows it needs, "
                     f"{_t(st.drift_checked_at)})")
        elif st.drift_decision and st.drift_score is not None:
            drift = f"{st.drift_decision} (PSI {st.drift_score:.3g}, {_t(st.drift_checked_at)})"
        else:
            drift = f"{st.drift_decision} ({_t(st.drift_checked_at)})" if st.drift_decision else "never checked"
        if st.drift_held:  # drift and no retrain: the operator's first question
            drift += f": held: {st.drift_held}"
        feedback = f"{st.feedback_since_training} / {st.feedback_threshold}" + (
            f": {st.feedback_held}" if st.feedback_held else "")
        retrain = (f"{st.retrain_reason} {st.retrain_status} ({_t(st.retrain_at)})" if st.retrain_reason else "none")
        if st.retrain_error:  # the first words of why: the run (retrain_run_id) has the rest
            retrain += f": {st.retrain_error if len(st.retrain_error) <= 120 else st.retrain_error[:117] + '...'}"
        look = f"{st.next_look} at {_t(st.next_look_at)}" if st.next_look_at else "-"
        if st.next_look_at and now is not None and st.next_look_at < now:
            # the clock moved past it (`hive clock advance`): it is made at the next sensor tick, not then
            look += " (overdue: made at the next sensor tick)"
        queue = st.review_queue
        review = ("-" if queue is None else "no request today" if not any(queue.values()) else
                  f"{queue['open']} open; today {queue['requested']} requested, {queue['answered']} answered, "
                  f"{queue['expired']} expired" + (f"; {queue['malformed']} malformed, not counted"
                                                    if queue.get("malformed") else ""))
        rows.append([st.specialist, champion, st.champion_why or "-", challenger, ab, drift, feedback, retrain, look,
                     review])
    return rows


HEADER = ["specialist", "champion", "why", "challenger (traffic)", "A/B estimate [always-valid interval]",
          "last drift check", "trusted feedback / threshold", "last retrain", "next look", "review queue"]


def format_status(statuses: list[SpecialistStatus], now: datetime) -> str:
    """The view as text, one block per specialist (the rows are too wide for one table in a terminal)."""
    lines = [f"platform clock: {now:%Y-%m-%d %H:%M} UTC"]
    for row in _rows(statuses, now):
        lines.append("")
        lines.append(row[0])
        lines += [f"  {name:<37}{value}" for name, value in zip(HEADER[1:], row[1:])]
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def status_markdown(statuses: list[SpecialistStatus]) -> str:
    """The view as a markdown table (the UI's `platform_status` observation)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in _rows(statuses)]
    return "\n".join(lines)
