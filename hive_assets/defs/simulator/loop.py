"""`hive loop`: D simulated days of production, hour by hour, with the platform acting as in production.

Each simulated hour: the clock (HIVE_SIMULATED_NOW in this process) moves to the hour's end; the simulator serves the
hour's traffic with the registered champion and challenger (hive_assets.simulator.ServingLoop); the
scenario's operator acts if it is time; then `InProcessDaemon.tick` evaluates the code location's
sensors (feedback, drift, A/B check) against the real instance and executes their run requests as
real runs, with run keys, cursors and trigger documents as in production; at the end of the hour the
home's clock (`$HIVE_HOME/clock.json`, with the scenario's settings) is pinned there, so every other
process of the home (dagster dev, the daemon, the CLI) sees the time the loop reached, and a loop
interrupted mid-way resumes from its last complete hour. The timeline is read back from the documents
those runs wrote (hive_assets.simulator.build_timeline).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import dagster as dg

from hive_assets import clock, registry
from hive_assets.config import REVIEW_QUEUE_BUDGET_ENV, SPECIALISTS, Settings
from hive_assets.data import audit_sink_for, to_utc
from hive_assets.defs.monitoring.sensors import last_training
from hive_assets.defs.review.sensors import SENSOR_NAME as REVIEW_SENSOR
from hive_assets.defs.runs.doctor import find_orphans, fix_orphans
from hive_assets.interrupts import stop_if_signalled
from hive_assets.defs.simulator.daemon import InProcessDaemon, LaunchedRun
from hive_assets.simulator import Scenario, ServingLoop, interrupted_hour, loop_origin, resume_start

OPERATOR = "operator:hive-loop"
# drift first: a drifted specialist is retrained for its drift when both triggers are due in one hour
SENSOR_ORDER = ("drift_retraining_sensor", "feedback_retraining_sensor", "ab_test_check_sensor")


@dataclass
class LoopResult:
    start: datetime
    end: datetime
    runs: list[LaunchedRun]
    served: Counter = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)  # where the wall time went


def loop_start(store, instance: dg.DagsterInstance, until: datetime | None = None) -> datetime | None:
    """Where the stored history ends: the latest opinion (evaluated up to `until`) or training (platform
    clock), rounded up to the hour (None when the store holds no opinion)."""
    latest = store.find_one("specialist_opinions", {"evaluated_at": {"$lte": until}} if until is not None else {},
                            sort=[("evaluated_at", -1)])
    at = to_utc(latest["evaluated_at"]) if latest else None
    if at is None:
        return None
    trainings = [t for s in SPECIALISTS if (t := last_training(instance, s, reaching_registry=False)[0]) is not None]
    at = max([at, *trainings])
    hour = at.replace(minute=0, second=0, microsecond=0)
    return hour if hour == at else hour + timedelta(hours=1)


def default_start(store, instance: dg.DagsterInstance, pinned: datetime | None) -> tuple[datetime | None, str | None]:
    """Where a loop without --start begins, and a note when the store holds opinions it does not play to: the
    home's clock (`pinned`: a simulated home), or where the stored history ends if that is later, but not past
    the platform's now by more than the hour a loop ends in. An imported opinion dated 2200 (or `hive simulate
    --now` months ahead) sent the loop, and the home's clock with it, there, silently."""
    until = (pinned or clock.now()) + timedelta(hours=1)
    start = max((c for c in (pinned, loop_start(store, instance, until)) if c is not None), default=None)
    ahead = store.find_one("specialist_opinions", {"evaluated_at": {"$gt": until}}, sort=[("evaluated_at", -1)])
    if start is None or ahead is None or (at := to_utc(ahead["evaluated_at"])) is None:
        return start, None
    return start, (f"note: the store holds opinions evaluated up to {at:%Y-%m-%d %H:%M} UTC, after the platform's "
                   f"clock: played from {start.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC (what is dated later "
                   "counts once the clock gets there); --start or `hive clock pin` plays from another instant")


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore what was there."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _operator_pushes(daemon: InProcessDaemon, store, scenario: Scenario, start: datetime, now: datetime,
                     done: set[str]) -> list[LaunchedRun]:
    """The scenario's operator: after a specialist's promotion, push its previous champion as challenger."""
    runs = []
    for specialist in scenario.push_previous_champion:
        if specialist in done:
            continue
        row = store.find_one("model_decisions", {"specialist_type": specialist, "kind": "promotion"},
                             sort=[("recorded_at", -1)])
        if row is None or to_utc(row["recorded_at"]) < start or not row["details"].get("previous_version"):
            continue
        done.add(specialist)
        config = {"specialist": specialist, "new_version": str(row["details"]["previous_version"]),
                  "traffic": scenario.push_traffic}
        request = dg.RunRequest(run_config={"ops": {"start_ab_test": {"config": config}}},
                                tags={"hive/actor": OPERATOR})
        run = daemon.launch(now, "ab_test_start", request)
        if run is not None:
            runs.append(run)
    return runs


def _operator_retrains(daemon: InProcessDaemon, scenario: Scenario, hour: int, now: datetime) -> list[LaunchedRun]:
    """The scenario's operator: at the end of each of `retrain_days`, launch `retrain_specialist` for every
    specialist, as from the Launchpad (the job's own tags; no trigger, so no sensor's hold applies)."""
    if hour % 24 or hour // 24 not in scenario.retrain_days:
        return []
    runs = []
    for specialist in SPECIALISTS:
        request = dg.RunRequest(partition_key=specialist, tags={"hive/actor": OPERATOR})
        if (run := daemon.launch(now, "retrain_specialist", request)) is not None:
            runs.append(run)
    return runs


def recover_killed_runs(daemon: InProcessDaemon, store) -> list[str]:
    """Run monitoring's work for the runs a killed loop left STARTED (they ran in its process): each run whose
    process is gone (`hive doctor`'s rule: its leases are stale) is marked FAILURE with the reason and its
    leases released, and the run-status sensors see that failure, so its trigger document is `failed`, not
    `pending` for ever. The sensor that requested it then requests the trigger's next attempt (`:retry-<n>`:
    the daemon skips a run key it has seen): left STARTED, the run held its specialist's triggers "in flight"
    for HIVE_RETRAIN_MAX_RUNTIME_SECONDS of wall time. What was done, one line each."""
    report = find_orphans(daemon.instance, store)
    done = fix_orphans(daemon.instance, store, report, by="hive loop")
    for orphan in report.dagster_runs:
        run = daemon.instance.get_run_by_id(orphan["run_id"])
        if run is not None and run.status == dg.DagsterRunStatus.FAILURE:
            daemon.follow(run)
    return done


def run_loop(instance: dg.DagsterInstance, defs: dg.Definitions, store, tracking_uri: str, scenario: Scenario,
             *, start: datetime | None = None, progress: Callable[[str], None] | None = None) -> LoopResult:
    """Play `scenario` from `start` (default: the end of the stored history); see the module docstring."""
    progress = progress or (lambda _line: None)
    if start is not None and (latest := registry.latest_decision_at(store)) is not None and start < latest:
        # the loop plays on from the home's state: hours before its decisions would be written after them
        raise ValueError(f"start {start.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC is before this home's latest "
                         f"decision ({latest:%Y-%m-%d %H:%M} UTC, its ledger): leave --start out to begin where "
                         "the stored history ends, or play in a new HIVE_HOME")
    client = registry.client_for(tracking_uri)
    missing = [s for s in SPECIALISTS if registry.alias_version(client, s, registry.CHAMPION) is None]
    if missing:
        # `hive train` stops at validation_report: say how to get a champion, not just "train"
        raise ValueError(f"no champion registered for {', '.join(missing)}: materialize each specialist's asset "
                         "graph first (dagster asset materialize -m hive_assets.definitions --select "
                         "'not group:review' --partition <specialist>, as make demo does; hive train registers "
                         "nothing)")
    home = clock.read_home_clock()
    pinned = home.now if home is not None and home.simulated else None
    # a loop of this seed killed inside an hour: ServingLoop plays that hour again, from its start if it can
    start, resumed = resume_start(interrupted_hour(store, scenario.seed), start, pinned)
    if resumed:
        progress(resumed)
    if start is None:
        start, note = default_start(store, instance, pinned)
        if note:
            progress(note)
    if start is None:
        raise ValueError("the document store holds no opinions: simulate and train first (make demo does)")
    start = start.astimezone(timezone.utc)
    clock.check_span(start, timedelta(hours=scenario.hours))
    clock.pin(start, settings=dict(scenario.settings))  # a production home refuses here, before any hour
    origin = loop_origin(store, scenario.seed, start)  # the drift's hours count from the home's first loop
    drift = [d.at(origin) for d in scenario.drift]
    for injection in drift:
        if injection.onset < start:
            progress(f"drift: {injection.specialist} has seen domain {injection.domain} since "
                     f"{injection.onset:%Y-%m-%d %H:%M} UTC (its hours count from this home's first loop, "
                     f"{origin:%Y-%m-%d %H:%M} UTC)")
    world = ServingLoop(store, tracking_uri, seed=scenario.seed, label_noise=scenario.label_noise,
                        feedback_rate=scenario.feedback_rates, feedback_median_hours=scenario.feedback_median_hours,
                        drift=drift, review_capacity=scenario.review_queue_budget, origin=origin,
                        audit_sink=audit_sink_for(Settings.from_env()))
    daemon = InProcessDaemon(instance, defs, order=SENSOR_ORDER)
    for line in recover_killed_runs(daemon, store):  # a loop killed while its runs ran (one loop per home)
        progress(f"a run left by a killed loop: {line}")
    settings = dict(scenario.settings)
    with review_queue_of(daemon, store, scenario, settings, progress):
        return _play(daemon, world, store, client, scenario, start, settings, progress)


REVIEW_SENSOR_STATE = "review_sensor"  # `simulator_state`: whether a loop started the sensor (a kill leaves it on)


@contextmanager
def review_queue_of(daemon: InProcessDaemon, store, scenario: Scenario, settings: dict[str, str],
                    progress: Callable[[str], None]) -> Iterator[None]:
    """The review queue sensor while a loop plays: with `--review-queue N` (the daily queue, and reviewers who
    answer it first) started for the loop with budget N, and stopped again after it unless it ran before.
    Left running, it went on requesting the default budget in later loops and under the daemon, with nobody
    answering: the simulated reviewers work a queue only with the flag. A loop killed before it could stop
    it left a mark in the store: the next loop counts the sensor as a loop's, not as one started in the UI."""
    def mark(started_by_loop: bool) -> None:
        store.upsert_many("simulator_state", [{"state_id": REVIEW_SENSOR_STATE, "started_by_loop": started_by_loop}])

    state = store.find_one("simulator_state", {"state_id": REVIEW_SENSOR_STATE})
    left_by_a_loop = daemon.running(REVIEW_SENSOR) and bool((state or {}).get("started_by_loop"))
    started = False
    if scenario.review_queue_budget:
        settings[REVIEW_QUEUE_BUDGET_ENV] = str(scenario.review_queue_budget)
        started = daemon.start(REVIEW_SENSOR) or left_by_a_loop
        if started:
            mark(True)  # before the first hour: a kill from here on leaves the mark
    elif left_by_a_loop:
        daemon.stop(REVIEW_SENSOR)
        mark(False)
        progress(f"{REVIEW_SENSOR} was left running by a loop that did not end: stopped")
    elif daemon.running(REVIEW_SENSOR):
        progress(f"{REVIEW_SENSOR} runs in this home's instance (started in the UI): its requests are made, but "
                 "the simulated reviewers answer a queue only with --review-queue N")
    try:
        yield
    finally:
        if started:
            daemon.stop(REVIEW_SENSOR)
            mark(False)


def _play(daemon: InProcessDaemon, world: ServingLoop, store, client, scenario: Scenario, start: datetime,
          settings: dict[str, str], progress: Callable[[str], None]) -> LoopResult:
    """The loop's hours, from `start` (see `run_loop`)."""
    result = LoopResult(start, start, [])
    seconds: Counter = Counter()
    pushed: set[str] = set()
    day_runs: list[LaunchedRun] = []
    with environment(settings):
        for hour in range(1, scenario.hours + 1):
            now = start + timedelta(hours=hour)
            with environment({clock.SIMULATED_NOW: now.isoformat()}):
                t0 = time.perf_counter()
                served = world.serve_hour(now, plans=scenario.plans_per_hour, complete=False)
                t1 = time.perf_counter()
                runs = _operator_pushes(daemon, store, scenario, start, now, pushed)
                runs += daemon.tick(now)
                runs += _operator_retrains(daemon, scenario, hour, now)
                # complete only now: killed inside the tick, the next loop played on from the next hour and
                # this hour's looks and checks were never made (its sensors' finished work is not redone)
                world.complete_hour()
                clock.pin(now, settings=dict(scenario.settings))  # the hour is complete: the home's time
                t2 = time.perf_counter()
            seconds["serving the hour (simulator + models)"] += t1 - t0
            seconds["sensor evaluations"] += t2 - t1 - sum(run.seconds for run in runs)
            for run in runs:
                seconds[f"runs of {run.job}"] += run.seconds
            result.served.update({k: v for k, v in served.items() if k != "feedback_pending"})
            result.runs += runs
            day_runs += runs
            result.end = now
            if hour % 24 == 0 or hour == scenario.hours:
                progress(_day_line(hour, scenario, now, client, day_runs))
                day_runs = []
            stop_if_signalled()  # Ctrl-C stops after this complete hour even if Python dropped it
    result.seconds = dict(seconds)
    return result


def _day_line(hour: int, scenario: Scenario, now: datetime, client, runs: list[LaunchedRun]) -> str:
    kinds = Counter(run.job if run.job != "retrain_specialist" else
                    f"retrain {run.partition} ({run.tags.get('hive/trigger_reason', 'manual')})" for run in runs)
    champions = ", ".join(f"{s} v{v.version}" for s in SPECIALISTS
                          if (v := registry.alias_version(client, s, registry.CHAMPION)) is not None)
    failed = sum(not r.success for r in runs)
    # whole days count in days; a part of a day in hours (`--days 0.1` printed "day 0.08333/0.08333")
    played = f"day {hour // 24}/{scenario.hours // 24}" if scenario.hours % 24 == 0 else f"hour {hour}/{scenario.hours}"
    return (f"{played} ({now:%Y-%m-%d %H:%M} UTC): "
            + (", ".join(f"{n} x {k}" for k, n in sorted(kinds.items())) or "no runs")
            + (f", {failed} FAILED" if failed else "") + f"; champions {champions}")
