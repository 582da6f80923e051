"""trained_model: one calibrated classifier per specialist partition, one MLflow run each."""

import json
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from hive_assets import clock, registry
from hive_assets.defs import _ui
from hive_assets.defs.k8s import TRAINING_POD_TAGS
from hive_assets.defs.catalog import OWNERS, TRAINING
from hive_assets.defs.features.assets import data_until
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource
from hive_assets.defs.runs.doctor import end_interrupted_mlflow_runs
from hive_assets.defs.runs.lease import RUN_LEASE, RunLeaseResource
from hive_assets.defs.runs.interrupts import no_retry_after_ctrl_c
from hive_assets.defs.runs.run_config import step_config
from hive_assets.evaluation import confusion_matrix_png, point_metrics, reliability_diagram_png
from hive_assets.evaluation import calibration_metrics
from hive_assets.features import FEATURE_NAMES, FEATURE_SCHEMA_VERSION
from hive_assets.config import AUTO_CANDIDATES, AUTO_MODEL_TYPE
from hive_assets.data import COLLECTION_SETTINGS
from hive_assets.monitoring import REACHES_REGISTRY, reaches_registry
from hive_assets.training import (
    DEFAULT_SELECTION_MAX_ROWS, DEFAULT_TIME_BUDGET_SECONDS, DEFAULT_TUNING_CANDIDATES, encode_labels,
)


@step_config("trained_model")
class TrainConfig(dg.Config):
    """The seed's MLproject parameters that shape training (SPEC section 4); the specialist is the partition."""

    model_type: Literal["auto", "xgboost", "random_forest", "gradient_boosting", "logistic", "sparse_logistic", "mlp"] = Field(
        default="auto",
        description="Classifier family: auto (default: fit each of " + ", ".join(AUTO_CANDIDATES) + " and keep "
                    "the best validation macro-F1, each with its parameters chosen on validation; every candidate's "
                    "score is in the run's params and metadata), xgboost (gradient-boosted trees, native .ubj "
                    "storage), random_forest, gradient_boosting, logistic or sparse_logistic (standardized "
                    "multinomial logistic regression, L2 or L1 penalty) or mlp (one hidden layer of 64 units on "
                    "standardized features, two from 2,000 training rows; scikit-learn, stored with skops). "
                    "Class weights are balanced for every type.")
    hyperparameter_tuning: bool = Field(
        default=False,
        description="Search the model type's parameter space by successive halving, scoring macro-F1 on the "
                    "validation split (about 4 full fits of budget); off: the default parameters.")
    tuning_candidates: int = Field(
        default=DEFAULT_TUNING_CANDIDATES, ge=1,
        description="How many parameter sets successive halving starts from (a third survive each rung).")
    random_state: int = Field(
        default=0, ge=0, description="Seed of the estimator, the tuning sample and the drift reference subsample.")
    time_budget_seconds: float = Field(
        default=DEFAULT_TIME_BUDGET_SECONDS, gt=0,
        description="model_type auto: no further candidate family is started after this many seconds "
                    "(the first is always fitted); skipped candidates are listed in the metadata.")
    selection_max_rows: int = Field(
        default=DEFAULT_SELECTION_MAX_ROWS, ge=0,
        description="model_type auto without tuning: compare the families and their settings on a stratified "
                    "random sample of at most this many training rows, then fit the winner on all of them, so "
                    "choosing a model stops growing with the labels; 0 (the default): compare on every training "
                    "row. A bound costs quality: 2,500 lost 0.4-0.9 points of macro-F1 at 20,000 rows "
                    "(BENCHMARKS.md).")


def promote_if_better_param(run_config: dict | None) -> str:
    """`registered_model_version`'s promote_if_better in this Dagster run's config: True or False, or `unset`
    (registration then follows AB_TESTING_ENABLED). The run config of a run never changes, nor this value."""
    ops = (run_config or {}).get("ops") or {}
    value = ((ops.get("registered_model_version") or {}).get("config") or {}).get("promote_if_better")
    return "unset" if value is None else str(bool(value))


def run_reaches_registry(context: dg.AssetExecutionContext) -> bool:
    """Whether this run registers what it trains: its job (the subset a selection made) has
    `registered_model_version`, and the run executes that step. Not `context.run.asset_selection`:
    `dg.materialize` with a selection (`hive train`) records none, as a whole job's run does."""
    selected = {key.to_user_string() for key in context.job_def.asset_layer.selected_asset_keys}
    if context.run.step_keys_to_execute is not None:  # a re-execution of some steps only
        selected &= set(context.run.step_keys_to_execute)
    return reaches_registry(selected)


@dg.asset(
    partitions_def=specialist_partitions,
    group_name=TRAINING,
    kinds={"xgboost", "scikitlearn", "mlflow"},
    owners=OWNERS,
    op_tags=TRAINING_POD_TAGS,
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
    # no output when nothing changed since the champion / open challenger: the rest of the graph is skipped
    output_required=False,
    resource_defs={"run_lease": RUN_LEASE},  # the partition's one-writer lease, held for the whole run
)
def trained_model(context: dg.AssetExecutionContext, config: TrainConfig, enhanced_features: pd.DataFrame,
                  mlflow: MlflowResource, document_store: DocumentStoreResource, run_lease: RunLeaseResource):
    """A calibrated classifier, logged to MLflow as one run for this specialist partition (params, metrics,
    feature schema, dataset input, model with signature, images, drift reference). The run ends FINISHED
    when this step succeeds and FAILED when it fails. When the data snapshot and the training configuration
    equal the champion's (or the open challenger's), nothing is trained: no output (registration and the
    A/B test are skipped) and a `skipped_unchanged` row in the ledger says "nothing changed since vN"."""
    no_retry_after_ctrl_c()  # a retry policy would otherwise retry what the user's Ctrl-C cut short
    specialist = context.partition_key
    snapshot = enhanced_features.attrs.get("data_snapshot_hash", "")
    if problems := enhanced_features.attrs.get("trainable_problems"):
        raise dg.Failure(f"{specialist}: the stored enhanced_features failed its trainable check "
                         f"({'; '.join(problems)}); not training: materialize enhanced_features again (a wider "
                         "window_days, more feedback, or a lower min_training_samples) first", allow_retries=False)
    mlflow.require_reachable(context)  # before the skip's ledger row, the MLflow run and the output
    client = mlflow.client()
    training_config = registry.training_config_text({
        "model_type": config.model_type, "hyperparameter_tuning": config.hyperparameter_tuning,
        "tuning_candidates": config.tuning_candidates if config.hyperparameter_tuning else 0,
        "random_state": config.random_state, "feature_schema_version": FEATURE_SCHEMA_VERSION,
        # what `auto` chooses among, and the budget that can cut the list short: either changes the model
        **({"candidate_model_types": list(AUTO_CANDIDATES), "time_budget_seconds": config.time_budget_seconds}
           if config.model_type == AUTO_MODEL_TYPE else {}),
        # only when set: the versions trained before the setting existed compared on every row too
        **({"selection_max_rows": config.selection_max_rows}
           if config.model_type == AUTO_MODEL_TYPE and config.selection_max_rows else {}),
    })
    unchanged = registry.unchanged_version(client, specialist, snapshot, training_config)
    if unchanged is not None:
        version, alias = unchanged
        message = registry.nothing_changed_message(specialist, version, alias)
        with document_store.opened_in_step(context) as store:
            # a run that died between this alias and its ledger row left the ledger behind the registry:
            # skipping must not leave it so (the row is recorded after the fact, like any later action does)
            if registry.reconcile(client, store, specialist, alias, actor=f"dagster:{context.run_id}",
                                  dagster_run_id=context.run_id):
                context.log.warning(f"{specialist}: the ledger lacked v{version.version}'s {alias} alias; "
                                    "recorded after the fact")
            registry.record_decision(store, specialist, registry.SKIPPED_UNCHANGED, actor=f"dagster:{context.run_id}",
                                     reason=message, dagster_run_id=context.run_id, model_version=str(version.version),
                                     data_snapshot_hash=snapshot,
                                     details={"alias": alias, "training_config": training_config},
                                     decision_id=f"skip:{specialist}:{context.run_id}")
        context.log.info(message)
        return
    with document_store.opened_in_step(context) as store:
        resumable = registry.resumable_version(client, store, specialist, snapshot, training_config)
    if resumable is not None:
        # a dead run registered this model and stopped before its alias and ledger rows: validating and
        # registering it again completes them (registration is idempotent per MLflow run); training again
        # would register a duplicate and leave this version an orphan
        version, value = resumable
        context.log.warning(f"{specialist}: v{version.version} (MLflow run {version.run_id}) was trained on the same "
                            "data and configuration and registered by a run that ended before its alias and "
                            "ledger rows: not retrained, its registration is completed")
        yield dg.Output(value, metadata=_ui.for_display({
            "trained_at": dg.MetadataValue.timestamp(clock.now()), REACHES_REGISTRY: run_reaches_registry(context),
            **data_until(enhanced_features), "resumed_version": str(version.version),
            "mlflow_run_id": version.run_id, "model_uri": value["model_uri"], "model_type": value["model_type"]}))
        return
    with document_store.opened_in_step(context) as store:
        for line in end_interrupted_mlflow_runs(context.instance, store, client, specialist,
                                                by=f"the training of run {context.run_id}"):
            context.log.warning(f"run-start check: {line}")
    experiment_id = mlflow.experiment_id(client)
    tags = {"dagster.run_id": context.run_id, "dagster.partition": specialist, "specialist_type": specialist,
            "data_snapshot_hash": snapshot, "feature_schema_version": FEATURE_SCHEMA_VERSION,
            # what `hive deploy register` copies to the version, as registered_model_version does
            registry.TRAINING_CONFIG_TAG: training_config}
    if dagster_url := registry.dagster_run_url(context.run_id):  # back from MLflow to the run (the note is markdown)
        tags.update({"dagster.run_url": dagster_url,
                     "mlflow.note.content": f"Trained by Dagster run [{context.run_id}]({dagster_url})."})
    run_id = registry.training_run_for(client, experiment_id, context.run_id, specialist, tags)
    with registry.run_status(client, run_id, context.log.warning):
        train = enhanced_features[enhanced_features["split"] == "train"]
        validation = enhanced_features[enhanced_features["split"] == "validation"]
        from hive_assets.training import train_model  # scikit-learn on first fit, not at the location's load

        model, info = train_model(specialist, train, validation, config.model_type, config.hyperparameter_tuning,
                                  config.random_state, tuning_candidates=config.tuning_candidates,
                                  progress=context.log.info, time_budget_seconds=config.time_budget_seconds,
                                  selection_max_rows=config.selection_max_rows)
        selection = info["selection"]
        registry.log_params(client, run_id, {
            "specialist_type": specialist, "model_type": config.model_type,
            "hyperparameter_tuning": config.hyperparameter_tuning, "random_state": config.random_state,
            "tuning_candidates": config.tuning_candidates if config.hyperparameter_tuning else 0,
            "calibration_method": info["calibration_method"], "n_train": info["n_train"],
            "n_validation": info["n_validation"], "data_snapshot_hash": snapshot,
            "feature_schema_version": FEATURE_SCHEMA_VERSION, "selected_model_type": info["model_type"],
            # the data's own settings, carried from raw_production_data (a retry logs the same values)
            **registry.collection_params(enhanced_features.attrs.get(COLLECTION_SETTINGS) or {}),
            "promote_if_better": promote_if_better_param(context.run_config),
            **({"time_budget_seconds": config.time_budget_seconds, "selection_max_rows": config.selection_max_rows,
                "selection_rows": selection[0]["rows"]} if config.model_type == AUTO_MODEL_TYPE else {}),
            # why this family: every candidate's validation macro-F1 (or why it was not fitted)
            **{f"candidate.{c['model_type']}.val_macro_f1": (f"{c['val_macro_f1']:.4f}" if c["val_macro_f1"] is not None
                                                             else c["status"]) for c in selection},
            **{f"model.{k}": v for k, v in info["params"].items()},
        })
        y_val = encode_labels(validation["label"])
        val_proba = model.predict_proba(validation)
        val_metrics = {**point_metrics(y_val, val_proba), **calibration_metrics(y_val, val_proba)}
        for name in ("accuracy", "macro_f1", "confidence_mean", "ece", "brier"):
            if val_metrics[name] is not None:  # None: a class absent (the trainable check refuses that)
                client.log_metric(run_id, f"val_{name}", float(val_metrics[name]))
        client.log_metric(run_id, "val_macro_f1_uncalibrated", info["val_macro_f1_uncalibrated"])
        client.log_dict(run_id, {"feature_names": list(FEATURE_NAMES), "feature_schema_version": FEATURE_SCHEMA_VERSION,
                                 "classes": list(model.classes_)}, "feature_schema.json")
        client.log_dict(run_id, model.drift_reference, "drift_reference.json")
        client.log_dict(run_id, {"chosen": info["model_type"], "candidates": selection, "refit": info["refit"]},
                        "model_selection.json")
        if info["tuning_trials"]:
            client.log_dict(run_id, {"trials": info["tuning_trials"]}, "tuning_trials.json")
        registry.log_png(client, run_id, confusion_matrix_png(y_val, val_proba.argmax(axis=1),
                                                     f"{specialist}: confusion matrix (validation split)"),
                "plots/confusion_matrix_validation.png")
        registry.log_png(client, run_id, reliability_diagram_png(y_val, val_proba), "plots/reliability_diagram_validation.png")
        model_uri = registry.log_model(model, mlflow.uri, run_id, enhanced_features, snapshot)
        value = {
            "specialist": specialist, "mlflow_run_id": run_id, "model_uri": model_uri,
            "model_type": info["model_type"], "calibration_method": info["calibration_method"],
            "n_train": info["n_train"], "n_validation": info["n_validation"], "params": info["params"],
            "data_snapshot_hash": snapshot, "feature_schema_version": FEATURE_SCHEMA_VERSION,
            "training_config": training_config,
        }
        # last: a run that has it finished training (`resumable_version` completes its registration)
        client.log_text(run_id, json.dumps(value, sort_keys=True, default=str), registry.TRAINED_MODEL_ARTIFACT)
    context.log.info(f"{specialist}: trained {info['model_type']} on {info['n_train']} rows, MLflow run {run_id}")
    yield dg.Output(value, metadata=_ui.for_display({
        # the platform clock (simulated in `hive loop`): the feedback sensor counts feedback since then, when
        # this run registers (`hive train` does not: its labels reach no served model, the count goes on)
        "trained_at": dg.MetadataValue.timestamp(clock.now()), REACHES_REGISTRY: run_reaches_registry(context),
        **data_until(enhanced_features),
        "mlflow_run_id": run_id, "mlflow_run": _ui.link(registry.run_url(mlflow.uri, experiment_id, run_id)),
        "model_uri": model_uri, "model_type": info["model_type"], "model_type_config": config.model_type,
        "model_selection": _ui.table(
            [("model_type", "string", "candidate family"), ("val_macro_f1", "float", "macro-F1 on the validation split, "
              "before calibration"), ("rows", "int", "training rows it was fitted on (a sample above "
              "selection_max_rows; the winner is then fitted on all)"),
             ("seconds", "float", "fit (and tuning) time"), ("status", "string", "fitted, or why not"),
             ("chosen", "bool", "the served family"),
             ("converged", "bool", "its setting's fit converged before its iteration limit (else sklearn's "
              "ConvergenceWarning, recorded here instead of printed)")],
            [{k: c.get(k) for k in ("model_type", "val_macro_f1", "rows", "seconds", "status", "chosen", "converged")}
             for c in selection]),
        **({"refit_on_all_rows": dg.MetadataValue.json(info["refit"])} if info["refit"] else {}),
        "n_train": info["n_train"], "n_validation": info["n_validation"],
        "calibration_method": info["calibration_method"],
        "hyperparameter_tuning": config.hyperparameter_tuning,
        "val_macro_f1_uncalibrated": info["val_macro_f1_uncalibrated"],
        "val_ece": float(val_metrics["ece"]), "val_macro_f1": val_metrics["macro_f1"],
        "val_accuracy": float(val_metrics["accuracy"]),
        "params": dg.MetadataValue.json(info["params"]),
    }))
