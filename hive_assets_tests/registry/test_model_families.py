"""A model family added to `auto` must load back through MLflow as serving loads it (pyfunc, skops with the
trusted-type list): the MLP fitted by adam holds its optimizer's state, a type the other families never stored."""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd

from hive_assets import registry
from hive_assets.features import features_frame
from hive_assets.simulator import make_plans, policy_label
from hive_assets.training import MLP_ADAM_MIN_ROWS, train_model
from hive_assets_tests.registry.conftest import log_run


def test_an_mlp_model_round_trips_through_the_registry(mlflow_server, tmp_path, monkeypatch):
    plans = make_plans(900, seed=13)
    frame = features_frame(plans).assign(label=[policy_label("architecture", p) for p in plans])
    train = pd.concat([frame.iloc[:600]] * 4, ignore_index=True)  # 2,400 rows: the adam solver
    assert len(train) >= MLP_ADAM_MIN_ROWS
    model, info = train_model("architecture", train, frame.iloc[600:], model_type="mlp")
    assert info["params"]["solver"] == "adam" and info["calibration_method"] == "isotonic"
    _, model_uri = log_run(mlflow_server, "architecture", model)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where MLflow's downloads go unless told
    loaded = registry.load_model(mlflow_server, model_uri)
    assert list(tmp_path.iterdir()) == []  # the download is gone once loaded (MLflow's default kept it)
    assert loaded.model_type == "mlp" and loaded.params == model.params
    assert np.allclose(loaded.predict_proba(frame), model.predict_proba(frame))
