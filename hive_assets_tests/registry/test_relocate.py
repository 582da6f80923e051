"""A home moved or copied to another directory: MLflow's database names the old place's artifacts. Every verb
that would use them refuses with the remedy, runs fail with it, and `hive doctor --fix` rewrites the recorded
locations so the moved home loads its own files (the old directory deleted, so nothing can come from there)."""

from __future__ import annotations

import json
import shutil
import sqlite3

import numpy as np
import pytest

from hive_assets import registry
from hive_assets.cli._main import main
from hive_assets.config import ConfigError, Settings
from hive_assets.defs.resources import MlflowResource
from hive_assets.features import features_frame


def _locations(db_path) -> list[str]:
    with sqlite3.connect(db_path) as db:
        return [value for table, column in registry._relocate.ARTIFACT_COLUMNS
                for (value,) in db.execute(f"SELECT {column} FROM {table}")]


@pytest.fixture
def moved_home(hive_home, small_models, monkeypatch, tmp_path):
    """A home with one model logged on the embedded MLflow, then moved (`mv`) to `tmp_path/moved home`."""
    settings = Settings.from_env()
    client = registry.client_for(settings.mlflow_uri)
    experiment = registry.ensure_experiment(client, settings.mlflow_experiment_name, settings.mlflow_artifact_root)
    run = client.create_run(experiment)
    model_uri = registry.log_model(small_models[0][0], settings.mlflow_uri, run.info.run_id)
    client.set_terminated(run.info.run_id)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri exports it; a new process
    new = tmp_path / "moved home"  # a space: the recorded locations are URIs (%20), the checks compare them as such
    shutil.move(hive_home, new)
    monkeypatch.setenv("HIVE_HOME", str(new))
    monkeypatch.setenv("DAGSTER_HOME", str(new / "dagster"))
    return hive_home, new, model_uri


def test_a_moved_home_is_refused_until_doctor_rewrites_its_artifact_locations(moved_home, small_models, capsys):
    old, new, model_uri = moved_home
    before = _locations(new / "mlflow.db")
    assert before and all(str(old).replace(" ", "%20") in loc for loc in before if loc.startswith("file:"))

    assert main(["deploy", "list", "--specialist", "business"]) == 1
    err = capsys.readouterr().err
    assert f"keeps the artifacts under {old / 'mlartifacts'}, not under {new / 'mlartifacts'}" in err
    assert "run `hive doctor --fix`" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match="moved or copied"):  # a run launched from the UI or a sensor
        MlflowResource().client()

    assert main(["doctor", "--json"]) == 1  # read-only: reports, changes nothing
    found = json.loads(capsys.readouterr().out)["moved_home"]
    assert [m["artifact_root"] for m in found] == [(new / "mlartifacts").as_uri()]
    assert _locations(new / "mlflow.db") == before

    assert main(["doctor", "--fix"]) == 0
    out = capsys.readouterr().out
    assert "fixed: MLflow's artifact locations now under" in out and "1 experiments, 1 runs" in out
    after = _locations(new / "mlflow.db")
    assert len(after) == len(before) and not any(str(old) in loc for loc in after)
    assert all(loc.startswith((new / "mlartifacts").as_uri()) for loc in after if loc.startswith("file:"))

    # the moved home's own files serve the model: the same probabilities as the model that was logged
    model, plans = small_models[0][0], small_models[1]
    loaded = registry.load_model(Settings.from_env().mlflow_uri, model_uri)
    frame = features_frame(plans)
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))
    assert MlflowResource().client() is not None

    assert main(["doctor", "--fix"]) == 0  # idempotent: nothing left to rewrite
    assert "no orphaned runs or stale leases" in capsys.readouterr().out
    assert _locations(new / "mlflow.db") == after


def test_a_copy_without_its_artifacts_is_not_rewritten(moved_home, capsys):
    old, new, _ = moved_home
    shutil.rmtree(new / "mlartifacts")  # only the database came along
    before = _locations(new / "mlflow.db")
    assert main(["doctor", "--fix"]) == 2
    assert f"no artifacts at {new / 'mlartifacts'}" in capsys.readouterr().err
    assert _locations(new / "mlflow.db") == before


def test_only_the_embedded_mlflow_is_checked(hive_home, tmp_path, monkeypatch):
    assert registry.moved_home(Settings.from_env()) is None  # no database yet: nothing to say
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # a server keeps its own artifact root
    assert registry.moved_home(Settings.from_env()) is None
