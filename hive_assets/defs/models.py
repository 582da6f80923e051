"""trained_model and validation_report (with the blocking minimum-metrics gate)."""


from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from hive_assets import metrics as m
from hive_assets import registry
from hive_assets.defs.k8s import TRAINING_POD_TAGS
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource
from hive_assets.features import FEATURE_NAMES, FEATURE_SCHEMA_VERSION
from hive_assets.training import MODEL_TYPES, SchemaMismatch, encode_labels, train_model


class TrainConfig(dg.Config):
    """The seed's MLproject parameters that shape training."""

    model_type: str = "xgboost"
    hyperparameter_tuning: bool = False
    random_state: int = 0


def _mlflow_run_for(client, experiment_id: str, dagster_run_id: str, specialist: str, tags: dict[str, str]) -> str:
    """One MLflow run per specialist partition and Dagster run: a retried step reuses it."""
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`dagster.run_id` = '{dagster_run_id}' and tags.`dagster.partition` = '{specialist}'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=f"{specialist}-{dagster_run_id[:8]}", tags=tags)
    return run.info.run_id


@dg.asset(
    partitions_def=specialist_partitions,
    group_name="retraining",
    kinds={"xgboost", "scikitlearn", "mlflow"},
    op_tags=TRAINING_POD_TAGS,
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
)
def trained_model(context: dg.AssetExecutionContext, config: TrainConfig, enhanced_features: pd.DataFrame,
                  mlflow: MlflowResource) -> dg.Output[dict[str, Any]]:
    """A calibrated classifier, logged to MLflow as one run for this specialist partition."""
    if config.model_type not in MODEL_TYPES:
        raise dg.Failure(f"model_type must be one of {MODEL_TYPES}, got {config.model_type!r}")
    specialist = context.partition_key
    train = enhanced_features[enhanced_features["split"] == "train"]
    validation = enhanced_features[enhanced_features["split"] == "validation"]
    model, info = train_model(specialist, train, validation, config.model_type, config.hyperparameter_tuning,
                              config.random_state)
    snapshot = enhanced_features.attrs.get("data_snapshot_hash", "")
    client = mlflow.client()
    experiment_id = mlflow.experiment_id(client)
    run_id = _mlflow_run_for(client, experiment_id, context.run_id, specialist, {
        "dagster.run_id": context.run_id, "dagster.partition": specialist, "specialist_type": specialist,
        "data_snapshot_hash": snapshot, "feature_schema_version": FEATURE_SCHEMA_VERSION,
    })
    for key, value in {"specialist_type": specialist, "model_type": config.model_type,
                       "hyperparameter_tuning": config.hyperparameter_tuning,
                       "calibration_method": info["calibration_method"], "n_train": info["n_train"],
                       "n_validation": info["n_validation"], **{f"model.{k}": v for k, v in info["params"].items()}}.items():
        client.log_param(run_id, key, str(value))
    client.log_metric(run_id, "val_macro_f1_uncalibrated", info["val_macro_f1_uncalibrated"])
    client.log_dict(run_id, {"feature_names": list(FEATURE_NAMES), "feature_schema_version": FEATURE_SCHEMA_VERSION},
                    "feature_schema.json")
    model_uri = registry.log_model(model, mlflow.uri, run_id)
    client.set_terminated(run_id, "FINISHED")
    context.log.info(f"{specialist}: trained {config.model_type} on {info['n_train']} rows, MLflow run {run_id}")
    value = {
        "specialist": specialist, "mlflow_run_id": run_id, "model_uri": model_uri,
        "model_type": config.model_type, "calibration_method": info["calibration_method"],
        "n_train": info["n_train"], "n_validation": info["n_validation"], "params": info["params"],
        "data_snapshot_hash": snapshot, "feature_schema_version": FEATURE_SCHEMA_VERSION,
    }
    return dg.Output(value, metadata={
        "mlflow_run_id": run_id, "model_uri": model_uri, "model_type": config.model_type,
        "n_train": info["n_train"], "n_validation": info["n_validation"],
        "calibration_method": info["calibration_method"],
        "val_macro_f1_uncalibrated": info["val_macro_f1_uncalibrated"],
    })


def build_report(test: pd.DataFrame, proba: np.ndarray, champion: dict[str, Any] | None, n_boot: int = 1000,
                 seed: int = 0) -> dict[str, Any]:
    y = encode_labels(test["label"])
    point = m.point_metrics(y, proba)
    intervals = m.bootstrap_intervals(y, proba, test["plan_id"].to_numpy(), n_boot=n_boot, seed=seed)
    verdict = m.evaluate_gates(point)
    report = {
        "n_test": int(len(test)),
        "n_test_plans": int(test["plan_id"].nunique()),
        "metrics": point,
        "intervals": intervals,
        "gate": {"passed": verdict.passed, "failures": verdict.failures, "summary": verdict.describe()},
        "champion": champion,
    }
    if champion and champion.get("metrics"):
        report["champion_comparison"] = m.champion_comparison(point, champion["metrics"])
    return report


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
                             "metrics": m.point_metrics(encode_labels(test["label"]), champion_proba)}
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
    pm, ci = report["metrics"], report["intervals"]
    table = "| metric | value | 95% CI | minimum |\n|---|---|---|---|\n" + "\n".join(
        f"| {k} | {pm[k]:.3f} | [{ci[k][0]:.3f}, {ci[k][1]:.3f}] | {v:.2f} |" for k, v in m.minimum_metrics().items())
    yield dg.Output(report, metadata={
        "gate_passed": gate["passed"],
        "gate": gate["summary"],
        "n_test": report["n_test"],
        "accuracy": pm["accuracy"], "macro_f1": pm["macro_f1"], "confidence_mean": pm["confidence_mean"],
        "metrics": dg.MetadataValue.md(table),
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
