"""ab_test_outcome: the state of the champion/challenger test for each specialist."""

from typing import Any

import dagster as dg

from hive_assets import registry
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.rollout import open_test


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
        test, _ = open_test(store, specialist, reg["champion_version"], reg["version"],
                            platform.ab_test_default_traffic, dagster_run_id=context.run_id)
        # each side effect is idempotent and written whenever missing, not only when the test record was
        # created: a failure between the record and the registry leaves nothing permanently missing
        actor = f"dagster:{context.run_id}"
        registry.ensure_alias(client, store, specialist, registry.ab_test_alias(reg["version"]), reg["version"],
                              actor=actor, reason=f"A/B test {test['test_id']}", dagster_run_id=context.run_id,
                              mirror=False)
        registry.mirror_ab_split(client, specialist, test)
        registry.record_decision(store, specialist, "traffic_step", actor=actor,
                                 reason="A/B test opened", dagster_run_id=test.get("opened_by_run") or context.run_id,
                                 model_version=reg["version"],
                                 details={"test_id": test["test_id"], "traffic_percent": test["traffic_percent"]},
                                 decision_id=f"ab-open:{test['test_id']}")
    state = {"specialist": specialist, "status": test["status"], "test_id": test["test_id"],
             "traffic_percent": test["traffic_percent"], "champion_version": test["champion_version"],
             "challenger_version": test["challenger_version"], "verdict": "insufficient_data"}
    return dg.Output(state, metadata={"status": test["status"], "test_id": test["test_id"],
                                      "traffic_percent": test["traffic_percent"], "verdict": "insufficient_data"})
