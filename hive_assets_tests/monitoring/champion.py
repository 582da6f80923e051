"""A real champion for drift tests: a small model trained on simulated plans, its drift reference built
from its training rows (as training stores it), logged to MLflow and given the `champion` alias."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pandas as pd

from hive_assets import registry
from hive_assets.features import features_frame
from hive_assets.monitoring import build_reference
from hive_assets.simulator import make_plans, policy_label
from hive_assets.training import temporal_group_split, train_model


def train_small_model(specialist: str, now: datetime, n_plans: int = 1500, seed: int = 2, with_reference: bool = True):
    plans = make_plans(n_plans, seed=seed, now=now, days=60)
    frame = features_frame(plans)
    frame["label"] = [policy_label(specialist, p) for p in plans]
    frame["plan_id"] = [p["plan_id"] for p in plans]
    frame["evaluated_at"] = pd.to_datetime([p["created_at"] for p in plans], utc=True)
    frame["split"] = temporal_group_split(frame)
    train = frame[frame.split == "train"]
    model, _ = train_model(specialist, train, frame[frame.split == "validation"], model_type="random_forest")
    # as training stores it (train_model may already have); None: a model from before drift references
    model.drift_reference = build_reference(train, list(model.predict(train))) if with_reference else None
    return model


def register_champion(tracking_uri: str, specialist: str, model, experiment: str = "drift-tests"):
    """(`tracking_uri`: sqlite:///<path>.) Log `model` in a new MLflow run, register it as a version of `<specialist>-evaluator`, alias champion."""
    client = registry.client_for(tracking_uri)
    # artifacts beside the SQLite backend (not ./mlruns in the working directory)
    root = Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts"
    experiment_id = registry.ensure_experiment(client, experiment, root.as_uri())
    run = client.create_run(experiment_id, run_name=f"{specialist}-champion")
    # MLflow 3's SQLite store puts logged models under ./mlruns whatever the experiment's location
    cwd = os.getcwd()
    os.chdir(root.parent)
    try:
        uri = registry.log_model(model, tracking_uri, run.info.run_id)
    finally:
        os.chdir(cwd)
    version, _ = registry.register_version(client, specialist, run.info.run_id, uri, tags={})
    client.set_registered_model_alias(registry.model_name(specialist), registry.CHAMPION, version.version)
    return client, version


def serve_with(model, version: str):
    """A simulator opinion model: `model` serves every plan, as the champion version `version`."""
    def serve(specialist: str, plans: list[dict]):
        labels = model.predict(features_frame(plans))
        return [(str(label), 0.9, str(version), {}) for label in labels]

    return serve
