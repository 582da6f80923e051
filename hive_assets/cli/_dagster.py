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


def run_job(job_name: str, run_config: dict | None = None, *, partition_key: str | None = None,
            tags: dict[str, str] | None = None):
    """Run one of the code location's jobs in the configured instance (a real run, with its config)."""
    from hive_assets.definitions import defs

    return defs.resolve_job_def(job_name).execute_in_process(
        run_config=run_config or {}, instance=instance(), partition_key=partition_key, tags=tags,
        raise_on_error=False)


def latest_partition_metadata(instance, asset: str, specialist: str) -> tuple[str | None, dict]:
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[specialist]), limit=1).records
    if not records:
        return None, {}
    event = records[0].event_log_entry
    mat = event.asset_materialization
    return event.run_id, {k: v.value for k, v in (mat.metadata or {}).items()}
