"""Registering a version in another process than the training's, against an embedded (SQLite) MLflow: the
`--select registered_model_version` run after `hive train`."""

from __future__ import annotations

import mlflow

from hive_assets import registry
from hive_assets_tests.registry.conftest import log_run


def test_a_version_registers_whatever_mlflow_s_global_tracking_uri(tmp_path, small_models, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a SQLite tracking URI keeps its artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id, model_uri = log_run(uri, "business", small_models[0][0])
    # a fresh process has MLflow's default tracking URI (./mlflow.db in the working directory): MLflow's SQL
    # registry resolves a `models:/m-...` source through it, not through the client's URI
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    client = registry.client_for(uri)
    try:
        version, created = registry.register_version(client, "business", run_id, model_uri, {"k": "v"},
                                                     model_id=model_uri.removeprefix("models:/"))
    finally:
        mlflow.set_tracking_uri(before)  # the next tests' process state
    assert created and str(version.version) == "1" and version.run_id == run_id
    assert client.get_model_version("business-evaluator", "1").tags["k"] == "v"
