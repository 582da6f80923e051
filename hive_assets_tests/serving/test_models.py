"""How the router holds a loaded model (no MLflow needed)."""

from __future__ import annotations

import numpy as np
from xgboost import XGBClassifier

from hive_assets.features import features_frame
from hive_assets.serving._router import single_threaded
from hive_assets.simulator import make_plans, policy_label
from hive_assets.training import SpecialistModel, encode, encode_labels


def test_the_served_xgboost_copy_is_single_threaded_and_predicts_the_same_to_the_bit():
    plans = make_plans(400, seed=21)
    frame = features_frame(plans)
    estimator = XGBClassifier(n_estimators=40, max_depth=4).fit(encode(frame), encode_labels(
        [policy_label("business", p) for p in plans]))
    estimator.set_params(n_jobs=None)  # as `XGBClassifier().load_model(...)` leaves it: every core
    loaded = SpecialistModel("business", "xgboost", estimator)
    served = single_threaded(loaded)
    assert served.estimator.get_params()["n_jobs"] == 1 and loaded.estimator.get_params()["n_jobs"] is None
    scored = features_frame(make_plans(500, seed=22))
    assert np.array_equal(served.predict_proba(scored), loaded.predict_proba(scored))
    assert single_threaded(served) is served  # nothing to change: no copy
