"""validation_report, with the blocking minimum-metrics gate."""

import dagster as dg
import pandas as pd

from hive_assets import registry
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource
from hive_assets.evaluation import build_report, metrics_table_markdown, point_metrics
from hive_assets.training import SchemaMismatch, encode_labels


@dg.asset(
    partitions_def=specialist_partitions,
    group_name="retraining",
    kinds={"mlflow"},
    check_specs=[dg.AssetCheckSpec("minimum_metrics", asset="validation_report", blocking=True,
                                   description="SPEC section 5 minimum metrics on the test split.")],
)
def validation_report(context: dg.AssetExecutionContext, enhanced_features: pd.DataFrame, trained_model: dict,
                      mlflow: MlflowResource, document_store: DocumentStoreResource):
    """Held-out metrics with bootstrap intervals, the champion re-scored on the same rows, the verdict."""
    specialist = context.partition_key
    test = enhanced_features[enhanced_features["split"] == "test"].reset_index(drop=True)
    model = registry.load_model(mlflow.uri, trained_model["model_uri"])
    proba = model.predict_proba(test)
    client = mlflow.client()
    champion_info = None
    champion = registry.alias_version(client, specialist, registry.CHAMPION)
    if champion is not None and champion.run_id != trained_model["mlflow_run_id"]:
        try:
            champion_model = registry.load_version_model(client, champion)
            champion_proba = champion_model.predict_proba(test)
            champion_info = {"version": str(champion.version),
                             "metrics": point_metrics(encode_labels(test["label"]), champion_proba)}
        except SchemaMismatch as exc:
            champion_info = {"version": str(champion.version), "metrics": None, "not_comparable": str(exc)}
    report = build_report(test, proba, champion_info)
    report.update({"specialist": specialist, "mlflow_run_id": trained_model["mlflow_run_id"],
                   "model_uri": trained_model["model_uri"], "data_snapshot_hash": trained_model["data_snapshot_hash"]})
    run_id = trained_model["mlflow_run_id"]
    for name, value in report["metrics"].items():
        client.log_metric(run_id, f"test_{name}", float(value))
    for name, (lo, hi) in report["intervals"].items():
        client.log_metric(run_id, f"test_{name}_ci_low", lo)
        client.log_metric(run_id, f"test_{name}_ci_high", hi)
    client.log_dict(run_id, report, "validation_report.json")
    gate = report["gate"]
    with document_store.open() as store:
        registry.record_decision(
            store, specialist, "gate_verdict", actor=f"dagster:{context.run_id}",
            reason=gate["summary"], dagster_run_id=context.run_id, data_snapshot_hash=report["data_snapshot_hash"],
            details={"passed": gate["passed"], "failures": gate["failures"], "mlflow_run_id": run_id},
            decision_id=f"gate:{specialist}:{context.run_id}",
        )
    pm = report["metrics"]
    yield dg.Output(report, metadata={
        "gate_passed": gate["passed"],
        "gate": gate["summary"],
        "n_test": report["n_test"],
        "accuracy": pm["accuracy"], "macro_f1": pm["macro_f1"], "confidence_mean": pm["confidence_mean"],
        "metrics": dg.MetadataValue.md(metrics_table_markdown(report)),
        "test_metrics": dg.MetadataValue.json({k: v for k, v in pm.items() if not k.startswith("support_")}),
        "intervals": dg.MetadataValue.json(report["intervals"]),
        "champion_version": champion_info["version"] if champion_info else None,
    })
    yield dg.AssetCheckResult(
        check_name="minimum_metrics",
        passed=gate["passed"],
        severity=dg.AssetCheckSeverity.ERROR,
        description=gate["summary"],
        metadata={"failed_metrics": dg.MetadataValue.json(gate["failures"]),
                  "macro_f1": pm["macro_f1"], "accuracy": pm["accuracy"], "confidence_mean": pm["confidence_mean"]},
    )
