"""The only CLI module that talks to Dagster: runs go to the configured instance, so the UI shows them."""

from __future__ import annotations


def instance():
    import dagster as dg

    return dg.DagsterInstance.get()


def materialize(selection: list[str], specialist: str, run_config: dict | None = None):
    """Materialize `selection` for one partition in the configured Dagster instance (a real run)."""
    import dagster as dg

    from hive_assets.definitions import defs

    return dg.materialize(
        list(defs.assets), selection=selection, partition_key=specialist, resources=defs.resources,
        instance=instance(), run_config=run_config or {}, raise_on_error=False,
    )


def latest_partition_metadata(instance, asset: str, specialist: str) -> tuple[str | None, dict]:
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[specialist]), limit=1).records
    if not records:
        return None, {}
    event = records[0].event_log_entry
    mat = event.asset_materialization
    return event.run_id, {k: v.value for k, v in (mat.metadata or {}).items()}


def run_job(job_name: str, run_config: dict | None = None, tags: dict[str, str] | None = None,
            output_node: str | None = None) -> dict:
    """Run a job of the code location in the configured instance (a real run, shown in the UI).

    Returns {"run_id", "success", "output" (of `output_node`, when it succeeded), "error" (the failure's
    description, when it failed)}."""
    from hive_assets.definitions import defs

    # the instance's event log keeps every event; the console logger would repeat them on stderr
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    result = defs.resolve_job_def(job_name).execute_in_process(
        run_config={**quiet, **(run_config or {})}, instance=instance(), tags=tags or {}, raise_on_error=False)
    error = None
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            data = event.step_failure_data
            user = data.user_failure_data
            error = (user.description if user and user.description else None) or data.error.message.strip()
    output = result.output_for_node(output_node) if result.success and output_node else None
    return {"run_id": result.run_id, "success": result.success, "output": output, "error": error}
