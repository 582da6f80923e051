"""Training: grouped temporal split, every model type, calibration, storage without pickle."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from hive_assets.data import collect
from hive_assets.features import FEATURE_NAMES, features_frame
from hive_assets.evaluation import point_metrics
from hive_assets.simulator import simulate
from hive_assets.data.store import SQLiteStore
from hive_assets.training import (
    MODEL_TYPES, SchemaMismatch, SpecialistModel, encode_labels, temporal_group_split, train_model,
)

NOW = datetime(2026, 5, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    store = SQLiteStore(tmp_path_factory.mktemp("train") / "store.sqlite")
    simulate(store, plans=2200, days=40, seed=8, now=NOW)
    raw = collect(store, "technical", now=NOW).frame
    raw = raw[raw["label"].notna()].reset_index(drop=True)
    out = pd.concat([raw[["plan_id", "evaluated_at", "label"]], features_frame(raw["plan"].tolist())], axis=1)
    out["split"] = temporal_group_split(out)
    return out


def test_split_is_temporal_grouped_and_70_15_15(frame):
    shares = frame["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.70, abs=0.01)
    assert shares["validation"] == pytest.approx(0.15, abs=0.01)
    assert frame.groupby("plan_id")["split"].nunique().max() == 1
    assert frame.loc[frame.split == "train", "evaluated_at"].max() <= frame.loc[frame.split == "validation", "evaluated_at"].min()
    assert frame.loc[frame.split == "validation", "evaluated_at"].max() <= frame.loc[frame.split == "test", "evaluated_at"].min()


def test_split_never_puts_a_plan_in_two_splits():
    t = pd.Timestamp("2026-01-01", tz="UTC")
    f = pd.DataFrame({"plan_id": ["a", "b", "a", "c", "d", "b", "e", "f", "g", "h"],
                      "evaluated_at": [t + pd.Timedelta(hours=h) for h in (0, 1, 9, 2, 3, 4, 5, 6, 7, 8)]})
    split = temporal_group_split(f)
    assert split[f.plan_id == "a"].nunique() == 1 and split[f.plan_id == "b"].nunique() == 1


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_each_model_type_learns_and_round_trips_without_pickle(frame, model_type, tmp_path):
    train, val, test = (frame[frame.split == s] for s in ("train", "validation", "test"))
    model, info = train_model("technical", train, val, model_type=model_type)
    proba = model.predict_proba(test)
    assert np.allclose(proba.sum(axis=1), 1.0)
    metrics = point_metrics(encode_labels(test["label"]), proba)
    assert metrics["macro_f1"] > 0.70, metrics  # the policy is learnable; chance is 0.33
    path = model.save(tmp_path / "m")
    files = sorted(p.name for p in path.iterdir())
    assert files == sorted(["schema.json", "calibrator.skops",
                            "estimator.ubj" if model_type == "xgboost" else "estimator.skops"])
    for p in path.iterdir():  # no pickle stream anywhere: pickle protocol 2+ starts with 0x80
        assert not p.read_bytes().startswith(b"\x80")
    loaded = SpecialistModel.load(path)
    assert np.allclose(loaded.predict_proba(test), proba)
    assert json.loads((path / "schema.json").read_text())["feature_names"] == list(FEATURE_NAMES)


def test_calibration_improves_log_loss_on_the_test_split(frame):
    from sklearn.metrics import log_loss

    train, val, test = (frame[frame.split == s] for s in ("train", "validation", "test"))
    model, info = train_model("technical", train, val, model_type="random_forest")
    y = encode_labels(test["label"])
    assert info["calibration_method"] == "sigmoid"  # validation split < 1,000 rows
    assert log_loss(y, model.predict_proba(test), labels=[0, 1, 2]) < log_loss(y, model.raw_proba(test), labels=[0, 1, 2])


def test_tuning_scores_macro_f1_on_validation(frame):
    train, val = frame[frame.split == "train"], frame[frame.split == "validation"]
    _, info = train_model("technical", train, val, model_type="gradient_boosting", hyperparameter_tuning=True)
    trials = info["tuning_trials"]
    assert len(trials) == 8
    assert info["val_macro_f1_uncalibrated"] == max(t["val_macro_f1"] for t in trials)


def test_schema_version_mismatch_is_refused(frame, tmp_path):
    train, val = frame[frame.split == "train"], frame[frame.split == "validation"]
    model, _ = train_model("technical", train, val, model_type="random_forest")
    path = model.save(tmp_path / "m")
    schema = json.loads((path / "schema.json").read_text())
    schema["feature_schema_version"] = "0.9.0"
    (path / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(SchemaMismatch, match="0.9.0"):
        SpecialistModel.load(path)


def test_untrusted_types_are_refused_on_load(frame, tmp_path):
    import skops.io as sio

    path = tmp_path / "m"
    train, val = frame[frame.split == "train"], frame[frame.split == "validation"]
    model, _ = train_model("technical", train, val, model_type="random_forest")
    model.save(path)
    sio.dump({"payload": pd.Timestamp("2026-01-01")}, path / "calibrator.skops")  # a type nobody trusted
    with pytest.raises(Exception, match="[Uu]ntrusted"):
        SpecialistModel.load(path)
