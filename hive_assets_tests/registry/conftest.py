"""Real model versions to operate on: small random-forest models (a few hundred plans, seconds to train)
logged as MLflow runs on a real `mlflow server`, as `trained_model` logs them."""

from __future__ import annotations

import pandas as pd
import pytest

from hive_assets import registry
from hive_assets.config import SPECIALISTS
from hive_assets.data.store import SQLiteStore
from hive_assets.features import features_frame
from hive_assets.simulator import make_plans, policy_label
from hive_assets.training import temporal_group_split, train_model

EXPERIMENT = "registry-operations"
# each model learns another specialist's policy, so two versions' predictions differ
POLICIES = ("business", "technical", "behavior", "architecture")


@pytest.fixture(scope="session")
def small_models():
    """Four fitted models and 50 plans to score."""
    plans = make_plans(500, seed=11)
    frame = features_frame(plans)
    frame["plan_id"] = [p["plan_id"] for p in plans]
    frame["evaluated_at"] = pd.to_datetime([p["created_at"] for p in plans], utc=True)
    frame["split"] = temporal_group_split(frame)
    models = []
    for i, policy in enumerate(POLICIES):
        frame["label"] = [policy_label(policy, p) for p in plans]
        model, _ = train_model("business", frame[frame.split == "train"], frame[frame.split == "validation"],
                               model_type="random_forest", random_state=i)
        models.append(model)
    return models, plans[:50]


def log_run(tracking_uri: str, specialist: str, model, snapshot: str = "snap") -> tuple[str, str]:
    """(MLflow run id, model URI) of a new training run holding `model`, tagged as trained_model tags it."""
    client = registry.client_for(tracking_uri)
    experiment_id = registry.ensure_experiment(client, EXPERIMENT)
    run = client.create_run(experiment_id, tags={"dagster.partition": specialist, "dagster.run_id": "test-run",
                                                 "data_snapshot_hash": snapshot,
                                                 "feature_schema_version": model.feature_schema_version})
    client.log_param(run.info.run_id, "model_type", model.model_type)
    uri = registry.log_model(model, tracking_uri, run.info.run_id)
    client.set_terminated(run.info.run_id)
    return run.info.run_id, uri


def record_gate(store, specialist: str, run_id: str, passed: bool = True) -> None:
    """The `gate_verdict` row validation_report writes for a training run."""
    registry.record_decision(store, specialist, "gate_verdict", actor="dagster:test", reason="test gate",
                             details={"passed": passed, "failures": [], "mlflow_run_id": run_id})


@pytest.fixture(scope="session")
def business_runs(mlflow_server, small_models):
    """Four business training runs on the shared server (logged once per session)."""
    models, _ = small_models
    return [log_run(mlflow_server, "business", m, snapshot=f"snap{i}")[0] for i, m in enumerate(models)]


@pytest.fixture
def clean_registry(mlflow_server):
    """An MLflow client on the shared server with no `<specialist>-evaluator` model (each test starts empty)."""
    client = registry.client_for(mlflow_server)
    for specialist in SPECIALISTS:
        if client.search_registered_models(f"name='{registry.model_name(specialist)}'"):
            client.delete_registered_model(registry.model_name(specialist))
    return client


@pytest.fixture
def store(hive_home):
    with SQLiteStore(hive_home / "store.sqlite") as s:
        yield s


def registry_state(client, specialist: str) -> dict:
    """Everything an operation could change in the registry: versions, aliases, stages, tags."""
    name = registry.model_name(specialist)
    if not client.search_registered_models(f"name='{name}'"):
        return {}
    model = client.get_registered_model(name)
    versions = client.search_model_versions(f"name='{name}'")
    return {"aliases": dict(model.aliases), "tags": dict(model.tags),
            "versions": {v.version: (v.current_stage, dict(v.tags)) for v in versions}}


def ledger(store, specialist: str) -> list[dict]:
    return list(store.find("model_decisions", {"specialist_type": specialist}, sort=[("recorded_at", 1)]))
