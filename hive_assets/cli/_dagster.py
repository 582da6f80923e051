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


def output_if_any(result, node: str):
    """The output of `node` in an in-process result, or None when the step produced none (it failed or
    was skipped)."""
    import dagster as dg

    try:
        return result.output_for_node(node)
    except dg.DagsterInvariantViolationError:
        return None


def failure_message(result) -> str:
    """The first step failure's message of a run (or a generic note)."""
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            return f"{event.step_key}: {error.message.strip() if error else 'failed'}"
    return "no step failure recorded (see the Dagster run log)"
