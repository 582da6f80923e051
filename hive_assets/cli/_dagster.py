"""The only CLI module that talks to Dagster: runs go to the configured instance, so the UI shows them."""

from __future__ import annotations

from hive_assets.reachability import one_line, reachable, registry_down  # noqa: F401  (re-exported)


def instance():
    import dagster as dg

    return dg.DagsterInstance.get()


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _OwnSessionSubprocess:
    """The `subprocess` module as Dagster's compute-log mirror sees it: its processes start in a session of
    their own."""

    def __getattr__(self, name: str):
        import subprocess

        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args, **kwargs):  # noqa: N802 (subprocess's name)
        import subprocess

        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen(*args, **kwargs)


def log_mirrors_in_their_own_session() -> None:
    """An in-process run mirrors each step's captured output to the terminal with a `tail -F` and a Python
    watcher (dagster's compute_logs), started in the CLI's process group: the terminal's Ctrl-C reached the
    watchers too, and each printed a KeyboardInterrupt traceback above the verb's one line. In a session of
    their own they never see it; Dagster still terminates both when the step ends (SIGTERM, the watcher
    also when the CLI dies). Dagster's private module: if it changes, the mirror is left as it is."""
    try:
        from dagster._core.execution import compute_logs
    except ImportError:
        return
    if hasattr(compute_logs, "execute_posix_tail") and hasattr(compute_logs, "subprocess"):
        compute_logs.subprocess = _OwnSessionSubprocess()


def materialize(selection: list[str], specialist: str, run_config: dict | None = None, log_level: str = "DEBUG"):
    """Materialize `selection` for one partition in the configured Dagster instance (a real run).
    `log_level` filters only what the console shows; the instance keeps every event for the UI."""
    import dagster as dg

    from hive_assets.definitions import defs
    from hive_assets.interrupts import stop_if_interrupted

    log_mirrors_in_their_own_session()
    config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": log_level}}}}
    return stop_if_interrupted(dg.materialize(
        list(defs.assets), selection=selection, partition_key=specialist, resources=defs.resources,
        instance=instance(), run_config=config, raise_on_error=False,
    ))


# the console shows no Dagster event: a failed run is one line (`failure_message`, its cause); the instance
# keeps every event, stack traces included, for the UI
QUIET = "CRITICAL"


def run_job(job_name: str, run_config: dict | None = None, *, partition_key: str | None = None,
            tags: dict[str, str] | None = None, log_level: str = "WARNING", run_key: str | None = None):
    """Run one of the code location's jobs in the configured instance (a real run, with its config).
    `log_level` filters only what the console shows; the instance keeps every event for the UI. `run_key`:
    tagged as the daemon tags a sensor's run, so the sensors see this run among the attempts of that key."""
    from hive_assets.definitions import defs
    from hive_assets.interrupts import stop_if_interrupted

    if run_key is not None:
        from dagster._core.storage.tags import RUN_KEY_TAG

        tags = {**(tags or {}), RUN_KEY_TAG: run_key}
    log_mirrors_in_their_own_session()
    config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": log_level}}}}
    return stop_if_interrupted(defs.resolve_job_def(job_name).execute_in_process(
        run_config=config, instance=instance(), partition_key=partition_key, tags=tags, raise_on_error=False))


def trigger_attempt(run_key: str) -> str:
    """The attempt of `run_key` the retraining sensors would request now (their `trigger_attempt`: the first
    whose run did not fail), read from the configured instance opened once."""
    from hive_assets.defs.monitoring.sensors import trigger_attempt as sensors_trigger_attempt

    with instance() as dagster_instance:
        return sensors_trigger_attempt(dagster_instance, run_key)


def failed_checks(result) -> list[str]:
    """`asset.check: description` of every blocking check that failed in the run (why it stopped)."""
    out = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            check = event.event_specific_data
            if not check.passed and check.blocking:
                out.append(f"{check.asset_key.to_user_string()}.{check.check_name}: {check.description or 'failed'}")
    return out


def _innermost(error) -> str | None:
    while error is not None and error.cause is not None:
        error = error.cause
    return one_line(error.message) if error is not None else None


def failure_message(result) -> str:
    """The error of a failed run in one line: the failed blocking checks (what the user can act on), else
    the step failure's cause (a `dg.Failure`'s description, else the innermost exception: the user's
    error, not Dagster's `DagsterExecutionStepExecutionError` wrapper), else a resource's setup error
    (e.g. the run lease held by another run), else the run failure event's message."""
    if checks := failed_checks(result):
        return "blocked by " + "; ".join(checks)
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data is None:
            continue
        if data.user_failure_data is not None and data.user_failure_data.description:
            return one_line(data.user_failure_data.description)
        if (message := _innermost(data.error)) is not None:
            return message
    for event in result.all_events:
        if event.event_type_value == "RESOURCE_INIT_FAILURE":
            error = getattr(event.event_specific_data, "error", None)
            if (message := _innermost(error)) is not None:
                return message
    for event in result.all_events:
        if event.event_type_value == "PIPELINE_FAILURE":
            return one_line(event.message or "run failed")
    return "run failed (see the Dagster run log)"


def latest_partition_metadata(instance, asset: str, specialist: str) -> tuple[str | None, dict]:
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[specialist]), limit=1).records
    if not records:
        return None, {}
    event = records[0].event_log_entry
    mat = event.asset_materialization
    return event.run_id, {k: v.value for k, v in (mat.metadata or {}).items()}


def output_if_any(result, node: str):
    """The output of `node` in an in-process result, or None when the step produced none (it failed or
    was skipped)."""
    import dagster as dg

    try:
        return result.output_for_node(node)
    except dg.DagsterInvariantViolationError:
        return None


def run_job_outcome(job_name: str, run_config: dict | None = None, tags: dict[str, str] | None = None,
                    output_node: str | None = None) -> dict:
    """`run_job`, summarised: {"run_id", "success", "output" (of `output_node`, when it succeeded), "error"
    (the failure's description, when it failed)}."""
    result = run_job(job_name, run_config, tags=tags, log_level=QUIET)
    output = result.output_for_node(output_node) if result.success and output_node else None
    return {"run_id": result.run_id, "success": result.success, "output": output,
            "error": None if result.success else failure_message(result)}


def doctor(*, fix: bool, specialist: str | None, mlflow_uri: str) -> dict:
    """`hive doctor`: the orphans of the configured instance, store and MLflow, and the registry decisions a
    crash left unfinished; fixed (completed) when asked. MLflow is checked only when it answers (an outage is
    reported, never waited for)."""
    from hive_assets.data import open_store
    from hive_assets.defs.runs.doctor import complete_intents, find_orphans, find_unfinished_intents, fix_orphans
    from hive_assets.registry import client_for

    client, mlflow_problem = None, reachable(mlflow_uri)
    if mlflow_problem is None:
        client = client_for(mlflow_uri)
    left: list[str] = []
    with instance() as dagster_instance, open_store() as store:
        report = find_orphans(dagster_instance, store, client, specialist=specialist)
        intents = find_unfinished_intents(dagster_instance, store, specialist=specialist,
                                          orphan_ids={r["run_id"] for r in report.dagster_runs})
        # what a fix could not do is "not fixed" (exit 1), never dropped
        done = fix_orphans(dagster_instance, store, report, client, by="hive doctor", warn=left.append) if fix else []
        if fix and intents:
            completed, not_completed = complete_intents(dagster_instance, store, intents, client, by="hive doctor")
            done += completed
            left += not_completed
    return {"report": {**report.as_dict(), "unfinished_intents": intents}, "fixed": done, "not_fixed": left,
            "mlflow": mlflow_problem or "checked"}


def result_metrics(result) -> dict:
    """Numeric metadata of an in-process run's materializations, as {"<asset>.<name>": value}."""
    metrics = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        for name, value in (mat.metadata or {}).items():
            if isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
                metrics[f"{mat.asset_key.to_user_string()}.{name}"] = value.value
    return metrics


def run_loop(scenario, *, start=None, progress=None):
    """`hive loop`: the scenario played against the configured instance, store and registry."""
    from hive_assets.config import Settings
    from hive_assets.data import open_store
    from hive_assets.definitions import defs
    from hive_assets.defs.simulator.loop import run_loop as play

    from hive_assets import clock

    log_mirrors_in_their_own_session()  # the loop's runs execute in this process too
    # one loop per home: a second one rewrote the first's hours and moved the clock back and forth
    with clock.playing(), instance() as dagster_instance, open_store() as store:
        return play(dagster_instance, defs, store, Settings.from_env().mlflow_uri, scenario, start=start,
                    progress=progress)


def platform_status():
    """(platform clock, the `hive status` view of every specialist), the last trainings read from the instance."""
    from hive_assets import clock
    from hive_assets.config import Settings
    from hive_assets.data import open_store
    from hive_assets.defs.monitoring.status import current_status
    from hive_assets.registry import client_for

    with instance() as dagster_instance, open_store() as store:
        return clock.now(), current_status(dagster_instance, store, client_for(Settings.from_env().mlflow_uri))
