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


def retrain(specialist: str, tags: dict[str, str]):
    """Run the job `retrain_specialist` for one partition in the configured instance (in this process)."""
    from hive_assets.definitions import defs

    job = defs.resolve_job_def("retrain_specialist")
    return job.execute_in_process(partition_key=specialist, instance=instance(), tags=tags, raise_on_error=False)


def result_metrics(result) -> dict:
    """Numeric metadata of an in-process run's materializations, as {"<asset>.<name>": value}."""
    metrics = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        for name, value in (mat.metadata or {}).items():
            if isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
                metrics[f"{mat.asset_key.to_user_string()}.{name}"] = value.value
    return metrics
