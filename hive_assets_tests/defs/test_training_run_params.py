"""The training run records how its data was collected (SPEC section 4): the collection's settings, as
raw_production_data applied them, and promote_if_better are params of the MLflow run, carried with the data
(not re-read at training time), and a retried training that reuses its MLflow run logs them again without
conflict. Real `mlflow server`, real Dagster runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from hive_assets import registry
from hive_assets.defs import build_defs
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.defs.training.jobs import retrain_specialist
from hive_assets.simulator import simulate
from hive_assets.data.store import SQLiteStore

pytestmark = pytest.mark.services

AS_OF = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)


def _business_resources(hive_home, mlflow_server: str, monkeypatch, experiment: str,
                        platform: PlatformSettings) -> dict:
    """The resources of a home with 45 simulated days of business traffic and its own MLflow experiment."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    simulate(SQLiteStore(hive_home / "store.sqlite"), plans=2500, days=45, seed=21, now=AS_OF, specialists=["business"])
    return {"document_store": DocumentStoreResource(),
            "mlflow": MlflowResource(tracking_uri=mlflow_server, experiment_name=experiment), "platform": platform}


def test_the_training_run_records_the_collection_settings_and_a_retry_logs_them_again(hive_home, own_mlflow_server,
                                                                                       monkeypatch):
    experiment = "training-run-params"
    # window_days and min_confidence unset: the run records the platform's values the collection applied
    resources = _business_resources(hive_home, own_mlflow_server, monkeypatch, experiment,
                                    PlatformSettings(data_collection_days=40, min_confidence=0.65))
    run_config = {"ops": {
        "raw_production_data": {"config": {"as_of": AS_OF.isoformat(), "min_feedback_quality": 0.55,
                                           "denied_feedback_sources": ["synthetic_backfill", "load_test", "bulk"]}},
        "trained_model": {"config": {"model_type": "random_forest"}},
        "registered_model_version": {"config": {"promote_if_better": False}},
    }}
    # the first attempt fails after its params are logged: the retry reuses the MLflow run and logs them again
    log_model, attempts = registry.log_model, []

    def fails_once(*args, **kwargs):
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("injected: the artifact store went away")
        return log_model(*args, **kwargs)

    monkeypatch.setattr(registry, "log_model", fails_once)
    result = dg.materialize(list(build_defs().assets), selection=retrain_specialist.selection,
                            partition_key="business", resources=resources, instance=dg.DagsterInstance.ephemeral(),
                            run_config=run_config, raise_on_error=False)
    assert result.success
    assert len(attempts) == 2
    assert [e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == ["trained_model"]

    client = registry.client_for(own_mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id],
                              f"tags.`dagster.run_id` = '{result.run_id}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"  # the retry reused the run
    run = runs[0]
    trained = result.output_for_node("trained_model")
    assert run.info.run_id == trained["mlflow_run_id"]
    params = run.data.params
    assert {k: params.get(k) for k in ("specialist_type", "model_type", "hyperparameter_tuning", "window_days",
                                       "min_confidence", "min_feedback_quality", "denied_feedback_sources",
                                       "quality_exempt_sources", "window_start", "window_end",
                                       "promote_if_better")} == {
        "specialist_type": "business", "model_type": "random_forest", "hyperparameter_tuning": "False",
        "window_days": "40", "min_confidence": "0.65", "min_feedback_quality": "0.55",
        "denied_feedback_sources": "bulk,load_test,synthetic_backfill", "quality_exempt_sources": "approval_service",
        "window_start": (AS_OF - timedelta(days=40)).isoformat(), "window_end": AS_OF.isoformat(),
        "promote_if_better": "False",
    }
    assert params["data_snapshot_hash"] == result.output_for_node("raw_production_data").snapshot_hash()
    # what `hive deploy register` copies to the version, as the Dagster registration does
    assert run.data.tags[registry.TRAINING_CONFIG_TAG] == trained["training_config"]
    registered = result.output_for_node("registered_model_version")
    version = client.get_model_version("business-evaluator", registered["version"])
    assert version.tags[registry.TRAINING_CONFIG_TAG] == trained["training_config"]


def test_a_bounded_model_selection_is_recorded_in_the_run_and_in_the_training_configuration(
        hive_home, own_mlflow_server, monkeypatch):
    """`selection_max_rows`: the families are compared on a sample of that many training rows and the winner
    is fitted on all of them; the run says so (params, model_selection.json, the asset's metadata), and the
    setting is part of the training configuration only when set, so versions trained before it existed (on
    every row, as the default still does) keep matching "nothing changed"."""
    import json
    from pathlib import Path

    resources = _business_resources(hive_home, own_mlflow_server, monkeypatch, "bounded-selection", PlatformSettings())
    client = registry.client_for(own_mlflow_server)
    instance = dg.DagsterInstance.ephemeral()
    trained = {}
    for bound in (300, 0):
        result = dg.materialize(
            list(build_defs().assets), selection=["raw_production_data", "enhanced_features", "trained_model"],
            partition_key="business", resources=resources, instance=instance,
            run_config={"ops": {"raw_production_data": {"config": {"as_of": AS_OF.isoformat()}},
                                "trained_model": {"config": {"selection_max_rows": bound}}}})
        assert result.success
        trained[bound] = result.output_for_node("trained_model")
        if bound:
            [materialization] = result.asset_materializations_for_node("trained_model")
            refit_metadata = materialization.metadata["refit_on_all_rows"].value
    sampled = trained[300]
    run = client.get_run(sampled["mlflow_run_id"])
    assert sampled["n_train"] > 300
    assert {k: run.data.params[k] for k in ("selection_max_rows", "selection_rows", "n_train")} == {
        "selection_max_rows": "300", "selection_rows": "300", "n_train": str(sampled["n_train"])}
    selection = json.loads(Path(client.download_artifacts(run.info.run_id, "model_selection.json")).read_text())
    assert [c["rows"] for c in selection["candidates"]] == [300] * len(selection["candidates"])
    assert selection["refit"]["rows"] == sampled["n_train"] == refit_metadata["rows"]
    assert json.loads(sampled["training_config"])["selection_max_rows"] == 300
    whole = json.loads(trained[0]["training_config"])
    assert "selection_max_rows" not in whole and whole == {
        k: v for k, v in json.loads(sampled["training_config"]).items() if k != "selection_max_rows"}
    assert client.get_run(trained[0]["mlflow_run_id"]).data.params["selection_rows"] == str(trained[0]["n_train"])
