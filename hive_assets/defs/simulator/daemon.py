"""What dagster-daemon does for this code location, on the simulated clock, in one process.

`hive loop` needs the platform to act after each simulated hour exactly as it does in production,
but the real daemon ticks on the wall clock. `InProcessDaemon.tick(now)` therefore does the daemon's
work itself, with the production code and the production instance:

- each sensor of the definitions is evaluated when its `minimum_interval_seconds` has passed on the
  simulated clock, with `build_sensor_context` on the real instance, its stored cursor and the
  definitions' resources (the sensor body is the code the daemon runs);
- its asset events are reported to the instance, its cursor kept for the next tick;
- each run request is deduplicated by run key as the daemon does (a run with the same
  `dagster/run_key` and `dagster/sensor_name` tags exists: skipped), then executed as a real run in the
  instance (`execute_in_process`, the sensor's tags plus the daemon's two);
- the run-status sensors then see the run's STARTED event and its final event, as the daemon's
  run-status loop would, and update the trigger documents (`follow`: also for a run a killed loop left,
  once it is marked failed).

- each evaluation is stored as the instance's tick record, as the daemon stores it (`create_tick` /
  `update_tick`: SKIPPED with the sensor's skip reason, or SUCCESS with the run ids and run keys; FAILURE
  with the error), and the sensor's `InstigatorState` (cursor, last run key, tick timestamps) is the one
  the daemon reads: the Automation page of `dagster dev` shows the loop's ticks, and a daemon started
  afterwards continues from the loop's cursors. A sensor stopped in the UI is not evaluated.

The clock is HIVE_SIMULATED_NOW (hive_assets.clock), which the caller sets for the hour: sensors,
assets and ledger rows read it. Tick timestamps are the wall time of the evaluation (as the runs' are;
the daemon purges and spaces ticks by wall time), and each skip reason starts with the simulated instant.
What differs from the daemon: runs execute one after another in this process (the in-process executor)
instead of through the run launcher.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg
from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.definitions.sensor_definition import SensorType
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteInstigatorOrigin, RemoteRepositoryOrigin
from dagster._core.scheduler.instigation import (
    InstigatorState, InstigatorStatus, SensorInstigatorData, TickData, TickStatus,
)
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._utils.error import serializable_error_info_from_exc_info

from hive_assets.interrupts import stop_if_interrupted
from hive_assets.defs.training.jobs import retrain_specialist

# the code location's name in workspace.yaml: tick records and sensor states are found by the selector
# (location, repository, sensor name), so the UI and the daemon of `dagster dev -w workspace.yaml` see them
LOCATION_NAME = "hive_assets"
MODULE = "hive_assets.definitions"


def sensor_origin(name: str) -> RemoteInstigatorOrigin:
    code_location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name=MODULE), location_name=LOCATION_NAME)
    return RemoteInstigatorOrigin(RemoteRepositoryOrigin(code_location, SINGLETON_REPOSITORY_NAME), name)


@dataclass
class LaunchedRun:
    """One run the daemon (or an operator) launched, for the loop's timeline."""

    at: datetime
    run_id: str
    job: str
    partition: str | None
    success: bool
    sensor: str | None
    run_key: str | None
    tags: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the run and its run-status sensors
    # CPU time of this process meanwhile (runs execute in process): what the run cost, whatever the neighbours
    cpu_seconds: float = 0.0


class InProcessDaemon:
    """Sensors and run-status sensors of `defs` against `instance`, on the caller's clock (module docstring)."""

    def __init__(self, instance: dg.DagsterInstance, defs: dg.Definitions, *, order: tuple[str, ...] = (),
                 log: Callable[[str], None] | None = None):
        self.instance, self.defs, self.log = instance, defs, log or (lambda _message: None)
        sensors = list(defs.sensors or [])
        self.run_status_sensors = [s for s in sensors if isinstance(s, dg.RunStatusSensorDefinition)]
        plain = [s for s in sensors if not isinstance(s, dg.RunStatusSensorDefinition)]
        rank = {name: i for i, name in enumerate(order)}
        # a fixed order (the daemon's is unspecified): the same seed gives the same history
        self.sensors = sorted(plain, key=lambda s: (rank.get(s.name, len(rank)), s.name))
        self.cursors: dict[str, str | None] = {}
        self.last_evaluated: dict[str, datetime] = {}
        self.launched: list[LaunchedRun] = []

    # -- sensors ----------------------------------------------------------------------------------------
    def due(self, sensor: dg.SensorDefinition, now: datetime) -> bool:
        last = self.last_evaluated.get(sensor.name)
        return last is None or now - last >= timedelta(seconds=sensor.minimum_interval_seconds or 30)

    def tick(self, now: datetime) -> list[LaunchedRun]:
        """Evaluate every due sensor at `now` and execute what it requests; the runs launched."""
        launched: list[LaunchedRun] = []
        for sensor in self.sensors:
            if not self.due(sensor, now):
                continue
            self.last_evaluated[sensor.name] = now
            launched += self._evaluate(sensor, now)
        return launched

    def start(self, name: str) -> bool:
        """Start the sensor `name` (as the UI's toggle does): a sensor stopped by default is then evaluated.
        Whether it was stopped before."""
        state = self._state(self._sensor(name))
        if state.is_running:
            return False
        self.instance.update_instigator_state(state.with_status(InstigatorStatus.RUNNING))
        return True

    def stop(self, name: str) -> None:
        """Stop the sensor `name` (as the UI's toggle does)."""
        state = self._state(self._sensor(name))
        if state.is_running:
            self.instance.update_instigator_state(state.with_status(InstigatorStatus.STOPPED))

    def running(self, name: str) -> bool:
        return self._state(self._sensor(name)).is_running

    def _sensor(self, name: str) -> dg.SensorDefinition:
        return next(s for s in self.sensors if s.name == name)

    def _state(self, sensor: dg.SensorDefinition) -> InstigatorState:
        """The sensor's stored state, created as the daemon creates it for a sensor that starts RUNNING."""
        origin = sensor_origin(sensor.name)
        state = self.instance.get_instigator_state(origin.get_id(), origin.get_selector().get_id())
        if state is None:
            status = (InstigatorStatus.DECLARED_IN_CODE if sensor.default_status == dg.DefaultSensorStatus.RUNNING
                      else InstigatorStatus.STOPPED)
            state = InstigatorState(origin, InstigatorType.SENSOR, status, SensorInstigatorData(
                min_interval=sensor.minimum_interval_seconds, last_sensor_start_timestamp=time.time(),
                sensor_type=SensorType.STANDARD))
            self.instance.add_instigator_state(state)
        return state

    def _evaluate(self, sensor: dg.SensorDefinition, now: datetime) -> list[LaunchedRun]:
        state = self._state(sensor)
        if not state.is_running:
            return []  # stopped in the UI: the daemon would not evaluate it either
        data = state.sensor_instigator_data
        cursor = self.cursors.get(sensor.name, data.cursor if data else None)
        started = time.time()
        tick = self.instance.create_tick(TickData(
            instigator_origin_id=state.instigator_origin_id, instigator_name=sensor.name,
            instigator_type=InstigatorType.SENSOR, status=TickStatus.STARTED, timestamp=started,
            selector_id=state.selector_id))
        launched, skipped = [], []
        try:
            context = dg.build_sensor_context(instance=self.instance, cursor=cursor, definitions=self.defs,
                                              resources=self.defs.resources)
            result = sensor.evaluate_tick(context)
            if result.cursor is not None:
                self.cursors[sensor.name] = result.cursor
            for event in result.asset_events:
                self.instance.report_runless_asset_event(event)
            for request in result.run_requests or []:
                run = self.launch(now, sensor.job_name, request, sensor=sensor.name)
                if run is None:
                    skipped.append(request.run_key)
                else:
                    launched.append(run)
                    tick = tick.with_run_info(run.run_id, request.run_key)
        except Exception:
            tick = tick.with_status(TickStatus.FAILURE, error=serializable_error_info_from_exc_info(sys.exc_info()))
            self.instance.update_tick(tick)
            raise
        prefix = f"[{now:%Y-%m-%d %H:%M} UTC, simulated] "
        if launched:
            tick = tick.with_status(TickStatus.SUCCESS)
        else:
            reason = result.skip_message or "Sensor function returned an empty result"
            if skipped:
                reason = f"{reason}; skipped runs already launched with run keys {', '.join(map(str, skipped))}"
            tick = tick.with_status(TickStatus.SKIPPED).with_reason(prefix + reason)
        cursor = self.cursors.get(sensor.name, cursor)
        tick = tick.with_cursor(cursor)
        self.instance.update_tick(tick)
        last_run_key = tick.run_keys[-1] if tick.run_keys else (data.last_run_key if data else None)
        self.instance.update_instigator_state(state.with_data(SensorInstigatorData(
            last_tick_timestamp=started, last_run_key=last_run_key, min_interval=sensor.minimum_interval_seconds,
            cursor=cursor, last_tick_start_timestamp=started,
            last_sensor_start_timestamp=data.last_sensor_start_timestamp if data else None,
            sensor_type=SensorType.STANDARD, last_tick_success_timestamp=time.time())))
        return launched

    # -- runs -------------------------------------------------------------------------------------------
    def launch(self, now: datetime, job_name: str, request: dg.RunRequest, *, sensor: str | None = None
               ) -> LaunchedRun | None:
        """Execute `request` as a run of `job_name` (None when its run key already ran, as the daemon skips)."""
        tags = dict(request.tags or {})
        if sensor is not None:
            tags[SENSOR_NAME_TAG] = sensor
            if request.run_key:
                tags[RUN_KEY_TAG] = request.run_key
                if self.instance.get_runs(dg.RunsFilter(tags={RUN_KEY_TAG: request.run_key,
                                                              SENSOR_NAME_TAG: sensor}), limit=1):
                    self.log(f"{sensor}: run key {request.run_key} already ran, skipped")
                    return None
        job = self.defs.resolve_job_def(job_name)
        started, started_cpu = time.perf_counter(), time.process_time()
        result = job.execute_in_process(instance=self.instance, partition_key=request.partition_key,
                                        run_config=request.run_config or {}, tags=tags, raise_on_error=False)
        self.follow(result.dagster_run)
        stop_if_interrupted(result)  # Ctrl-C stops the loop, not only this run (its failure is recorded above)
        run = LaunchedRun(now, result.run_id, job_name, request.partition_key, result.success, sensor,
                          request.run_key, tags, time.perf_counter() - started, time.process_time() - started_cpu)
        self.launched.append(run)
        return run

    def follow(self, run: dg.DagsterRun) -> None:
        """The daemon's run-status loop for one finished run: its STARTED event, then its final one, as the instance
        stored them (a run this daemon executed, or one marked failed after its process died)."""
        if run.job_name != retrain_specialist.name:
            return  # the run-status sensors follow retrain_specialist runs (a trigger's, or one launched by hand)
        events = []
        for status, kind in ((dg.DagsterRunStatus.STARTED, dg.DagsterEventType.RUN_START),
                             (dg.DagsterRunStatus.SUCCESS, dg.DagsterEventType.RUN_SUCCESS),
                             (dg.DagsterRunStatus.FAILURE, dg.DagsterEventType.RUN_FAILURE)):
            records = self.instance.get_records_for_run(run.run_id, of_type=kind).records
            if records:
                events.append((status, records[-1].event_log_entry.dagster_event))
        for status, event in events:
            for sensor in self.run_status_sensors:
                # RunStatusSensorDefinition keeps its status privately (no public accessor in 1.13)
                if sensor._run_status != status:  # noqa: SLF001
                    continue
                context = dg.build_run_status_sensor_context(
                    sensor_name=sensor.name, dagster_event=event, dagster_instance=self.instance, dagster_run=run,
                    resources=self.defs.resources)
                sensor(context.for_run_failure() if status == dg.DagsterRunStatus.FAILURE else context)
