"""trained_model: one calibrated classifier per specialist partition, one MLflow run each."""

from typing import Any

import dagster as dg
import pandas as pd

from hive_assets import registry
from hive_assets.defs.k8s import TRAINING_POD_TAGS
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import MlflowResource
from hive_assets.features import FEATURE_NAMES, FEATURE_SCHEMA_VERSION
from hive_assets.training import MODEL_TYPES, train_model


class TrainConfig(dg.Config):
    """The seed's MLproject parameters that shape training."""

    model_type: str = "xgboost"
    hyperparameter_tuning: bool = False
    random_state: int = 0


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
    run_id = registry.training_run_for(client, experiment_id, context.run_id, specialist, {
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
