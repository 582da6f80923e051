"""What a training run leaves in MLflow besides the model (`log_model`): images, params, and a run status
that ends FINISHED or FAILED, never RUNNING."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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
            from hive_assets.config import redact_secrets

            warn(f"could not mark MLflow run {run_id} FAILED: {redact_secrets(str(exc))}")  # Dagster's event log
        raise
    client.set_terminated(run_id, "FINISHED")


def log_png(client, run_id: str, png: bytes, artifact_file: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        path.write_bytes(png)
        parent = str(Path(artifact_file).parent)
        client.log_artifact(run_id, str(path), artifact_path=None if parent == "." else parent)


def log_params(client, run_id: str, params: dict[str, Any]) -> None:
    for key, value in params.items():
        client.log_param(run_id, key, str(value)[:6000])


def collection_params(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A collection's settings (`CollectResult.settings`: window, min_confidence, feedback
    quality, the trust deny-list...) as training-run params, a list as a sorted comma list. Empty for data
    stored before collections recorded their settings: nothing is guessed."""
    return {key: ",".join(sorted(str(v) for v in value)) if isinstance(value, (list, tuple, set, frozenset)) else value
            for key, value in settings.items()}


FAILURE_REASON_TAG = "hive.failure_reason"


def running_runs(client, experiment_id: str, dagster_run_id: str | None = None) -> list:
    """MLflow runs of the experiment still RUNNING (of one Dagster run when given), oldest first."""
    query = "attributes.status = 'RUNNING'"
    if dagster_run_id:
        query += f" and tags.`dagster.run_id` = '{dagster_run_id}'"
    runs = client.search_runs([experiment_id], filter_string=query, max_results=1000)
    return sorted(runs, key=lambda r: r.info.start_time or 0)


def mark_run_failed(client, run_id: str, reason: str) -> bool:
    """End a RUNNING MLflow run as FAILED with the reason as a tag. False when it was no longer RUNNING."""
    if client.get_run(run_id).info.status != "RUNNING":
        return False
    client.set_tag(run_id, FAILURE_REASON_TAG, reason[:5000])
    client.set_terminated(run_id, "FAILED")
    return True
