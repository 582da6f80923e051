"""One drift check (hive_assets.monitoring.check_drift) against a real champion in a real MLflow registry
(SQLite backend) and a real store, on windows simulated with and without drift (fixed seeds)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from hive_assets.data import SQLiteStore
from hive_assets.features import FEATURE_NAMES, features_frame
from hive_assets.monitoring import (
    MonitoringSettings, check_drift, drift_run_key, drift_window, feature_drift, time_bucket,
)
from hive_assets.simulator import make_plans, simulate
from hive_assets_tests.monitoring.champion import register_champion, serve_with, train_small_model

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
SETTINGS = MonitoringSettings()


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    model = train_small_model("business", NOW - timedelta(days=30))
    client, version = register_champion(uri, "business", model)
    bare = train_small_model("technical", NOW - timedelta(days=30), n_plans=600, with_reference=False)
    register_champion(uri, "technical", bare)
    return client, version, model


def window_store(tmp_path, drift: float, plans: int, seed: int, model=None, version=None,
                 malformed_rate: float = 0.01) -> SQLiteStore:
    store = SQLiteStore(tmp_path / f"store-{seed}.sqlite")
    simulate(store, plans=plans, days=0.8, seed=seed, now=NOW, drift=drift, feedback_rate=0.0,
             opinion_model=serve_with(model, version) if model is not None else None, malformed_rate=malformed_rate)
    return store


def test_no_champion_and_no_reference_are_reported_not_checked(champion, tmp_path):
    client, _, _ = champion
    store = window_store(tmp_path, 0.0, 50, seed=1)
    none = check_drift(store, client, "evolution", NOW, SETTINGS)
    assert (none.status, none.document, none.run_key) == ("no_champion", None, None)
    bare = check_drift(store, client, "technical", NOW, SETTINGS)
    assert bare.status == "no_reference" and bare.document is None and "no stored drift reference" in bare.message


def test_window_is_the_plans_the_specialist_saw_in_the_period(champion, tmp_path):
    store = window_store(tmp_path, 0.0, 300, seed=11, malformed_rate=0.0)
    window = drift_window(store, "business", NOW, SETTINGS.drift_window)
    # independent: the simulator's own plans (all created 1 h to 20 h before NOW), through the feature contract
    expected = features_frame(make_plans(300, seed=11, now=NOW, days=0.8))
    assert len(window) == 300 and list(window.columns[: len(FEATURE_NAMES)]) == list(FEATURE_NAMES)
    for name in ("risk_score", "num_tasks", "complexity_score"):
        assert np.array_equal(np.sort(window[name].to_numpy()), np.sort(expected[name].to_numpy())), name
    assert set(window["specialist_version"]) == {"0.0.0-heuristic"}
    # a day later the same plans are out of a 1-hour window
    assert len(drift_window(store, "business", NOW + timedelta(days=1), timedelta(hours=1))) == 0


def test_no_drift_window_gives_no_drift_and_no_run_key(champion, tmp_path):
    client, version, model = champion
    store = window_store(tmp_path, 0.0, 600, seed=12, model=model, version=version.version)
    check = check_drift(store, client, "business", NOW, SETTINGS)
    doc = check.document
    assert check.status == "checked" and doc["decision"] == "no_drift" and check.run_key is None
    assert doc["specialist_type"] == "business" and doc["model_version"] == str(version.version)
    assert doc["window_size"] >= 550 and set(doc["features"]) == set(FEATURE_NAMES)
    # the recorded PSI is the one feature_drift gives on the same window and reference (independent call)
    window = drift_window(store, "business", NOW, SETTINGS.drift_window)
    direct = feature_drift(model.drift_reference, window)
    # at full precision (issue 24: values were rounded to 6 decimals)
    assert doc["drift_score"] == max(f["psi"] for f in direct["features"].values())
    # prediction drift over the champion's own opinions, recorded
    assert doc["prediction_window_size"] == doc["window_size"]
    assert doc["prediction_drift"]["psi"] is not None and doc["prediction_drift"]["n"] == doc["window_size"]


def test_drifted_window_is_drift_with_a_run_key_for_that_version_and_interval(champion, tmp_path):
    client, version, _ = champion
    store = window_store(tmp_path, 1.0, 600, seed=13)
    check = check_drift(store, client, "business", NOW, SETTINGS)
    doc = check.document
    assert doc["decision"] == "drift" and doc["drift_score"] > SETTINGS.drift_threshold
    assert "risk_score" in doc["drifted_features"]
    # the key a request would use; the document gets it only once the sensor (or CLI) requests the run
    assert check.run_key == drift_run_key("business", version.version, time_bucket(NOW, SETTINGS.drift_check_interval))
    assert doc["run_key"] is None and doc["retraining"] is None
    # p-values at full precision (rounded to 6 decimals, so 0.0, before issue 24), with their log10, finite
    # where the p-value itself underflows (a PSI of 2 at 600 rows: chi-square far beyond 1e-308)
    level = doc["alpha"] / len(doc["features"])
    drifted = [doc["features"][name] for name in doc["drifted_features"]]
    for f in drifted:
        assert f["psi_noise_pvalue"] == 10.0 ** f["psi_noise_log10_pvalue"] < level
        assert f["psi_corrected"] > SETTINGS.drift_threshold
    assert any(0.0 < f["psi_noise_pvalue"] < 5e-7 for f in drifted)  # 0.0 once rounded
    assert doc["prediction_drift"] is None and doc["prediction_window_size"] == 0  # the heuristic served it


def test_a_small_window_is_insufficient_data_even_when_drifted(champion, tmp_path):
    client, _, _ = champion
    store = window_store(tmp_path, 1.0, 80, seed=14)
    check = check_drift(store, client, "business", NOW, SETTINGS)
    assert check.decision == "insufficient_data" and check.run_key is None
    assert check.document["window_size"] < SETTINGS.drift_min_rows
