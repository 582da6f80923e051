"""registered_model_version and ab_test_outcome."""


from typing import Any

import dagster as dg

from hive_assets import ab, registry
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings


class RegisterConfig(dg.Config):
    promote_if_better: bool = False  # without A/B: champion moves when the gate comparison says better


@dg.asset(
    partitions_def=specialist_partitions,
    group_name="retraining",
    kinds={"mlflow"},
    retry_policy=dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL),
)
def registered_model_version(
    context: dg.AssetExecutionContext, config: RegisterConfig, trained_model: dict, validation_report: dict,
    mlflow: MlflowResource, document_store: DocumentStoreResource, platform: PlatformSettings,
) -> dg.Output[dict[str, Any]]:
    """The `<specialist>-evaluator` version for this training run, with tags and aliases."""
    specialist = context.partition_key
    gate = validation_report["gate"]
    if not gate["passed"]:
        # the blocking check already stops this in the same run; this guards later, separate runs
        raise dg.Failure(f"{specialist}: validation gate failed, not registering: {gate['summary']}",
                         allow_retries=False)
    client = mlflow.client()
    pm = validation_report["metrics"]
    tags = {
        "dagster_run_id": context.run_id,
        "dagster_partition": specialist,
        "data_snapshot_hash": trained_model["data_snapshot_hash"],
        "feature_schema_version": trained_model["feature_schema_version"],
        "model_type": trained_model["model_type"],
        **{f"metric.{k}": f"{pm[k]:.4f}" for k in ("accuracy", "macro_f1", "confidence_mean")},
    }
    model_id = trained_model["model_uri"].removeprefix("models:/") if trained_model["model_uri"].startswith("models:/m-") else None
    version, created = registry.register_version(client, specialist, trained_model["mlflow_run_id"],
                                                 trained_model["model_uri"], tags, model_id=model_id)
    version_id = str(version.version)
    actor = f"dagster:{context.run_id}"
    snapshot = trained_model["data_snapshot_hash"]
    with document_store.open() as store:
        if created:
            registry.record_decision(store, specialist, "registration", actor=actor, reason="gate passed",
                                     dagster_run_id=context.run_id, model_version=version_id,
                                     data_snapshot_hash=snapshot,
                                     decision_id=f"register:{specialist}:{version_id}")
        champion = registry.alias_version(client, specialist, registry.CHAMPION)
        comparison = validation_report.get("champion_comparison")
        if champion is None:
            alias, reason = registry.CHAMPION, "first model for this specialist"
        elif str(champion.version) == version_id:
            alias, reason = registry.CHAMPION, "already champion"
        elif platform.ab_testing_enabled:
            alias, reason = registry.CHALLENGER, "A/B test against the champion"
        elif config.promote_if_better and comparison and comparison["better"]:
            alias, reason = registry.CHAMPION, (
                f"promote_if_better: macro-F1 +{comparison['macro_f1_improvement']:.3f}, no regression > 0.02")
        else:
            alias, reason = None, "kept as a candidate (no A/B, not promoted)"
        current = registry.alias_version(client, specialist, alias) if alias else None
        if alias and (current is None or str(current.version) != version_id):
            registry.move_alias(client, store, specialist, alias, version_id, actor=actor, reason=reason,
                                dagster_run_id=context.run_id, data_snapshot_hash=snapshot)
    value = {"specialist": specialist, "name": version.name, "version": version_id, "alias": alias,
             "created": created, "reason": reason, "mlflow_run_id": trained_model["mlflow_run_id"],
             "champion_version": str(champion.version) if champion else None}
    context.log.info(f"{specialist}: {version.name} v{version_id} -> {alias or 'no alias'} ({reason})")
    return dg.Output(value, metadata={"model": version.name, "version": version_id, "alias": alias or "",
                                      "new_version": created, "reason": reason})


@dg.asset(
    partitions_def=specialist_partitions,
    group_name="retraining",
    kinds={"mlflow"},
)
def ab_test_outcome(context: dg.AssetExecutionContext, registered_model_version: dict, mlflow: MlflowResource,
                    document_store: DocumentStoreResource, platform: PlatformSettings) -> dg.Output[dict[str, Any]]:
    """State of the champion/challenger test for this specialist (opened at AB_TEST_DEFAULT_TRAFFIC)."""
    specialist = context.partition_key
    reg = registered_model_version
    if reg["alias"] != registry.CHALLENGER or not platform.ab_testing_enabled:
        state = {"specialist": specialist, "status": "no_test",
                 "reason": f"v{reg['version']} is {reg['alias'] or 'unaliased'}: nothing to test", "test_id": None}
        return dg.Output(state, metadata={"status": "no_test", "reason": state["reason"]})
    client = mlflow.client()
    with document_store.open() as store:
        test, created = ab.open_test(store, specialist, reg["champion_version"], reg["version"],
                                     platform.ab_test_default_traffic, dagster_run_id=context.run_id)
        if created:
            name = registry.model_name(specialist)
            client.set_registered_model_alias(name, f"ab-test-v{reg['version']}", reg["version"])
            # serving pods read the split from the registry
            for key, value in {"ab_test_id": test["test_id"], "ab_salt": test["salt"],
                               "ab_challenger_traffic_percent": test["traffic_percent"],
                               "ab_challenger_version": reg["version"]}.items():
                client.set_registered_model_tag(name, key, str(value))
            registry.record_decision(store, specialist, "traffic_step", actor=f"dagster:{context.run_id}",
                                     reason="A/B test opened", dagster_run_id=context.run_id,
                                     model_version=reg["version"],
                                     details={"test_id": test["test_id"], "traffic_percent": test["traffic_percent"]},
                                     decision_id=f"ab-open:{test['test_id']}")
    state = {"specialist": specialist, "status": test["status"], "test_id": test["test_id"],
             "traffic_percent": test["traffic_percent"], "champion_version": test["champion_version"],
             "challenger_version": test["challenger_version"], "verdict": "insufficient_data"}
    return dg.Output(state, metadata={"status": test["status"], "test_id": test["test_id"],
                                      "traffic_percent": test["traffic_percent"], "verdict": "insufficient_data"})
