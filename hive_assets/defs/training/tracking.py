"""What a training run leaves in MLflow (issue 10): the model with its signature and input example, the
training data as a dataset input, images, the drift reference, and a run status that ends FINISHED or
FAILED, never RUNNING."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from hive_assets.features import FEATURE_NAMES
from hive_assets.registry._mlflow import MODEL_CODE, PIP_REQUIREMENTS

INPUT_EXAMPLE_ROWS = 5


@contextmanager
def run_status(client, run_id: str, warn: Callable[[str], None]) -> Iterator[None]:
    """Mark the MLflow run RUNNING for the step's work, FINISHED when it succeeds and FAILED when it raises
    (then re-raise). A retried step reuses the run, so it passes through RUNNING again and ends right."""
    client.update_run(run_id, status="RUNNING")
    try:
        yield
    except BaseException:
        try:
            client.set_terminated(run_id, "FAILED")
        except Exception as exc:  # MLflow itself is what failed: the step's own error is the one to raise
            warn(f"could not mark MLflow run {run_id} FAILED: {exc}")
        raise
    client.set_terminated(run_id, "FINISHED")


def log_png(client, run_id: str, png: bytes, artifact_file: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        path.write_bytes(png)
        parent = str(Path(artifact_file).parent)
        client.log_artifact(run_id, str(path), artifact_path=None if parent == "." else parent)


def log_model_and_data(model, tracking_uri: str, run_id: str, frame: pd.DataFrame, snapshot_hash: str,
                       specialist: str) -> str:
    """Log the SpecialistModel (pyfunc model from code, with signature and input example) and the
    training data (`mlflow.data` dataset input named by specialist, digest = data snapshot hash) into
    the run. Returns the model URI."""
    import mlflow
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(tracking_uri)
    columns = [*FEATURE_NAMES, "label", "split"]
    dataset = mlflow.data.from_pandas(frame[[c for c in columns if c in frame.columns]].reset_index(drop=True),
                                      targets="label", name=f"{specialist}-enhanced-features",
                                      digest=snapshot_hash or None)
    example = frame[list(FEATURE_NAMES)].head(INPUT_EXAMPLE_ROWS).reset_index(drop=True)
    proba = model.predict_proba(example)
    output = pd.DataFrame(proba, columns=[f"p_{c}" for c in model.classes_])
    output["recommendation"] = list(model.classes_[proba.argmax(axis=1)])
    output["confidence"] = proba.max(axis=1)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = model.save(Path(tmp) / "specialist_model")
        # start_run(run_id) resumes the run; ending the block would mark it FINISHED, which run_status
        # decides instead, so the status is set back by the caller's context
        with mlflow.start_run(run_id=run_id):
            mlflow.log_input(dataset, context="training", tags={"data_snapshot_hash": snapshot_hash})
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(MODEL_CODE),
                artifacts={"specialist_model": str(model_dir)},
                pip_requirements=PIP_REQUIREMENTS,
                signature=infer_signature(example, output),
                input_example=example,
                metadata={"feature_schema_version": model.feature_schema_version,
                          "feature_names": list(model.feature_names_in_), "model_type": model.model_type,
                          "data_snapshot_hash": snapshot_hash},
            )
    return info.model_uri


def log_params(client, run_id: str, params: dict[str, Any]) -> None:
    for key, value in params.items():
        client.log_param(run_id, key, str(value)[:6000])
