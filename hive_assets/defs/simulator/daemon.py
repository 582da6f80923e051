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
  run-status loop would, and update the trigger documents.

The clock is HIVE_SIMULATED_NOW (hive_assets.clock), which the caller sets for the hour: sensors,
assets and ledger rows read it. What differs from the daemon: runs execute one after another in this
process (the in-process executor) instead of through the run launcher, and sensor ticks are not
stored as tick records (the runs, their tags, the asset events and the cursors are).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

from hive_assets.defs.monitoring.sensors import TRIGGER_TAG


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
            context = dg.build_sensor_context(instance=self.instance, cursor=self.cursors.get(sensor.name),
                                              definitions=self.defs, resources=self.defs.resources)
            data = sensor.evaluate_tick(context)
            if data.cursor is not None:
                self.cursors[sensor.name] = data.cursor
            for event in data.asset_events:
                self.instance.report_runless_asset_event(event)
            for request in data.run_requests or []:
                run = self.launch(now, sensor.job_name, request, sensor=sensor.name)
                if run is not None:
                    launched.append(run)
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
        started = time.perf_counter()
        result = job.execute_in_process(instance=self.instance, partition_key=request.partition_key,
                                        run_config=request.run_config or {}, tags=tags, raise_on_error=False)
        self._run_status_sensors(result)
        run = LaunchedRun(now, result.run_id, job_name, request.partition_key, result.success, sensor,
                          request.run_key, tags, time.perf_counter() - started)
        self.launched.append(run)
        return run

    def _run_status_sensors(self, result: Any) -> None:
        """The daemon's run-status loop for one finished run: STARTED, then its final status."""
        run = result.dagster_run
        if TRIGGER_TAG not in run.tags:
            return  # only the trigger documents follow runs; nothing else watches them
        started = self.instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_START).records
        final = result.get_run_success_event() if result.success else result.get_run_failure_event()
        events = [(dg.DagsterRunStatus.STARTED, started[0].event_log_entry.dagster_event if started else None),
                  (dg.DagsterRunStatus.SUCCESS if result.success else dg.DagsterRunStatus.FAILURE, final)]
        for status, event in events:
            if event is None:
                continue
            for sensor in self.run_status_sensors:
                # RunStatusSensorDefinition keeps its status privately (no public accessor in 1.13)
                if sensor._run_status != status:  # noqa: SLF001
                    continue
                context = dg.build_run_status_sensor_context(
                    sensor_name=sensor.name, dagster_event=event, dagster_instance=self.instance, dagster_run=run,
                    resources=self.defs.resources)
                sensor(context.for_run_failure() if status == dg.DagsterRunStatus.FAILURE else context)
