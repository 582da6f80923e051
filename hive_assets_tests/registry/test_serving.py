from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from hive_assets.features import FEATURE_NAMES, features_frame, plan_features
from hive_assets.registry import Evaluator
from hive_assets.simulator import make_plans, policy_label
from hive_assets.training import SchemaMismatch, temporal_group_split, train_model


@pytest.fixture(scope="module")
def model():
    plans = make_plans(1500, seed=2)
    frame = features_frame(plans)
    frame["label"] = [policy_label("evolution", p) for p in plans]
    frame["plan_id"] = [p["plan_id"] for p in plans]
    frame["evaluated_at"] = pd.to_datetime([p["created_at"] for p in plans], utc=True)
    frame["split"] = temporal_group_split(frame)
    trained, _ = train_model("evolution", frame[frame.split == "train"], frame[frame.split == "validation"],
                             model_type="random_forest")
    return trained, plans


def test_evaluate_one_equals_the_batch_path(model):
    trained, plans = model
    evaluator = Evaluator(trained, "7")
    many = evaluator.evaluate_many(plans[:50])
    for plan, batch in zip(plans[:50], many):
        one = evaluator.evaluate(plan)
        assert one.recommendation == batch.recommendation
        assert one.confidence == pytest.approx(batch.confidence, abs=1e-12)
        assert one.model_version == "7"
    frame = pd.DataFrame([plan_features(p) for p in plans[:50]], columns=list(FEATURE_NAMES))
    assert np.allclose(trained.predict_proba(frame), [[e.probabilities[c] for c in trained.classes_] for e in many])


def test_a_model_of_another_schema_version_is_refused(model):
    trained, _ = model
    stale = copy.copy(trained)
    stale.feature_schema_version = "0.1.0"
    with pytest.raises(SchemaMismatch, match="0.1.0"):
        Evaluator(stale, "3")
