"""registered_model_version: the `<specialist>-evaluator` version of a training run, with tags and aliases."""

from typing import Any

import dagster as dg
from pydantic import Field

from hive_assets import registry
from hive_assets.defs import _ui
from hive_assets.defs.catalog import OWNERS, REGISTRY
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.defs.runs.lease import RUN_LEASE, RunLeaseResource
from hive_assets.defs.runs.interrupts import no_retry_after_ctrl_c
from hive_assets.defs.runs.run_config import step_config


@step_config("registered_model_version")
class RegisterConfig(dg.Config):
    promote_if_better: bool | None = Field(
        default=None,
        description="Without A/B testing, move champion to this version when the champion comparison says better "
                    "(macro-F1 +0.02, no gated metric worse by more than 0.02, non-inferior). Unset: on when "
                    "AB_TESTING_ENABLED is false, off otherwise.")


def refuse_if_clock_behind(store, specialist: str) -> None:
    """`registry.check_clock` as a step failure that no retry repeats: a clock pinned back would write the
    step's decisions before ones already made."""
    try:
        registry.check_clock(store, specialist)
    except registry.RegistryError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None


@dg.asset(
    partitions_def=specialist_partitions,
    group_name=REGISTRY,
    kinds={"mlflow"},
    owners=OWNERS,
    retry_policy=dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL),
    resource_defs={"run_lease": RUN_LEASE},  # the partition's one-writer lease, held for the whole run
)
def registered_model_version(
    context: dg.AssetExecutionContext, config: RegisterConfig, trained_model: dict, validation_report: dict,
    mlflow: MlflowResource, document_store: DocumentStoreResource, platform: PlatformSettings,
    run_lease: RunLeaseResource,
) -> dg.Output[dict[str, Any]]:
    """The `<specialist>-evaluator` version for this training run, with tags and aliases."""
    no_retry_after_ctrl_c()  # a retry policy would otherwise retry what the user's Ctrl-C cut short
    specialist = context.partition_key
    validated = validation_report.get("mlflow_run_id")
    if validated != trained_model["mlflow_run_id"] or \
            validation_report.get("data_snapshot_hash") != trained_model["data_snapshot_hash"]:
        # each output is the partition's latest: a trained_model materialized alone is not the model the stored
        # report validated, and its version would carry another model's gate and metrics
        raise dg.Failure(f"{specialist}: the stored validation_report is of MLflow run {validated}, not of "
                         f"trained_model's run {trained_model['mlflow_run_id']}: not registering a model nobody "
                         "validated; materialize validation_report first", allow_retries=False)
    gate = validation_report["gate"]
    if not gate["passed"]:
        # the blocking check already stops this in the same run; this guards later, separate runs
        raise dg.Failure(f"{specialist}: validation gate failed, not registering: {gate['summary']}",
                         allow_retries=False)
    mlflow.require_reachable(context)  # before the operator lease, the version, its ledger row and alias
    client = mlflow.client()
    # the operator lease too: an operator promotion or rollback must not interleave with this alias move; a
    # store outage anywhere in the block (the lease's own writes included) is retried as the step's
    with document_store.outage_retried(context), run_lease.deciding(context):
        run_lease.check()  # a run that lost its partition's lease is no longer the one writer: it must not register
        with document_store.open() as store:
            refuse_if_clock_behind(store, specialist)
        # the MLflow run this Dagster run trained, if it trained one: never register a model another run wrote
        # into the shared per-partition output (a registration-only run registers the latest trained_model)
        own = registry.training_run_of(client, mlflow.experiment_id(client), context.run_id, specialist)
        if own is not None and own != trained_model["mlflow_run_id"]:
            raise dg.Failure(f"{specialist}: this run trained MLflow run {own}, but its trained_model input is "
                             f"MLflow run {trained_model['mlflow_run_id']} (written by another run); not registering "
                             "another run's model", allow_retries=False)
        tags = registry.version_tags(
            specialist, gate="passed", dagster_run_id=context.run_id,
            data_snapshot_hash=trained_model["data_snapshot_hash"],
            feature_schema_version=trained_model["feature_schema_version"], model_type=trained_model["model_type"],
            # with the snapshot hash: what `trained_model` compares to skip an unchanged retraining
            training_config=trained_model.get("training_config"), metrics=validation_report["metrics"])
        uri = trained_model["model_uri"]
        model_id = uri.removeprefix("models:/") if uri.startswith("models:/m-") else None
        version, created = registry.register_version(client, specialist, trained_model["mlflow_run_id"],
                                                     trained_model["model_uri"], tags, model_id=model_id)
        version_id = str(version.version)
        actor = f"dagster:{context.run_id}"
        snapshot = trained_model["data_snapshot_hash"]
        # each side effect is written when missing, not when "created": a retry after a failure between
        # two writes completes the registration row, the alias and its ledger row (issue 8 item 6)
        with document_store.open() as store:
            registry.record_decision(store, specialist, "registration", actor=actor, reason="gate passed",
                                     dagster_run_id=context.run_id, model_version=version_id,
                                     data_snapshot_hash=snapshot,
                                     details={"mlflow_run_id": trained_model["mlflow_run_id"]},
                                     decision_id=f"register:{specialist}:{version_id}")
            champion = registry.alias_version(client, specialist, registry.CHAMPION)
            alias, reason = registry.alias_for_new_version(
                version_id, str(champion.version) if champion else None,
                ab_testing_enabled=platform.ab_testing_enabled, promote_if_better=config.promote_if_better,
                comparison=validation_report.get("champion_comparison"))
            if alias:
                registry.ensure_alias(client, store, specialist, alias, version_id, actor=actor, reason=reason,
                                      dagster_run_id=context.run_id, data_snapshot_hash=snapshot)
    value = {"specialist": specialist, "name": version.name, "version": version_id, "alias": alias,
             "created": created, "reason": reason, "mlflow_run_id": trained_model["mlflow_run_id"],
             "champion_version": str(champion.version) if champion else None}
    context.log.info(f"{specialist}: {version.name} v{version_id} -> {alias or 'no alias'} ({reason})")
    run_id = trained_model["mlflow_run_id"]
    return dg.Output(value, metadata={
        "model": version.name, "version": version_id, "alias": alias or "", "new_version": created, "reason": reason,
        "mlflow_model_version": _ui.link(registry.model_version_url(mlflow.uri, version.name, version_id)),
        "mlflow_run": _ui.link(registry.run_url(mlflow.uri, client.get_run(run_id).info.experiment_id, run_id)),
    })
