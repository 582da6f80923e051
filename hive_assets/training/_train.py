"""Fit, tune (optionally) and calibrate one specialist's model."""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
from sklearn.metrics import f1_score

from hive_assets.training._calibration import calibrate
from hive_assets.training._encoding import encode, encode_labels
from hive_assets.training._estimators import DEFAULT_PARAMS, MODEL_TYPES, TUNING_GRID, _fit
from hive_assets.training._model import SpecialistModel


def train_model(
    specialist: str,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    model_type: str = "xgboost",
    hyperparameter_tuning: bool = False,
    random_state: int = 0,
) -> tuple[SpecialistModel, dict[str, Any]]:
    """Fit on `train`, tune (optionally) and calibrate on `validation`. Frames hold FEATURE_NAMES + label."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model_type {model_type!r}; choose one of {MODEL_TYPES}")
    X_tr, y_tr = encode(train), encode_labels(train["label"])
    X_va, y_va = encode(validation), encode_labels(validation["label"])
    candidates = [{}]
    if hyperparameter_tuning:
        grid = TUNING_GRID[model_type]
        candidates = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    tried = []
    best = None
    for params in candidates:
        estimator = _fit(model_type, params, X_tr, y_tr, random_state)
        score = f1_score(y_va, estimator.predict(X_va), average="macro", zero_division=0)
        tried.append({"params": params, "val_macro_f1": float(score)})
        if best is None or score > best[0]:
            best = (score, params, estimator)
    assert best is not None
    _, params, estimator = best
    calibrator, method = calibrate(estimator.predict_proba(X_va), y_va)
    model = SpecialistModel(specialist, model_type, estimator, calibrator, method,
                            params={**DEFAULT_PARAMS[model_type], **params})
    info = {
        "n_train": int(len(y_tr)),
        "n_validation": int(len(y_va)),
        "val_macro_f1_uncalibrated": float(best[0]),
        "calibration_method": method,
        "tuning_trials": tried,
        "params": model.params,
    }
    return model, info
