"""Fit, tune (optionally) and calibrate one specialist's model; attach its drift reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from sklearn.metrics import f1_score

from hive_assets.features import FEATURE_NAMES
from hive_assets.monitoring._drift import build_reference
from hive_assets.training._calibration import calibrate
from hive_assets.training._encoding import encode, encode_labels
from hive_assets.training._estimators import DEFAULT_PARAMS, MODEL_TYPES, fit_estimator
from hive_assets.training._model import SpecialistModel
from hive_assets.training._tuning import sample_candidates, successive_halving

DEFAULT_TUNING_CANDIDATES = 27  # with halving factor 3: rungs of 27, 9, 3, 1 candidates


def train_model(
    specialist: str,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    model_type: str = "xgboost",
    hyperparameter_tuning: bool = False,
    random_state: int = 0,
    tuning_candidates: int = DEFAULT_TUNING_CANDIDATES,
    search_space: dict[str, Any] | None = None,
    candidates: list[dict[str, Any]] | None = None,
    calibration_method: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[SpecialistModel, dict[str, Any]]:
    """Fit on `train`; tune (optionally, successive halving on validation macro-F1) and calibrate on
    `validation`. Frames hold FEATURE_NAMES + `label`. Tuning draws `tuning_candidates` parameter sets
    from `search_space` (default SEARCH_SPACE[model_type]), or tries the given `candidates`.

    Class weights are balanced. Calibration: isotonic with >= ISOTONIC_MIN_ROWS validation rows, else
    sigmoid, unless `calibration_method` says otherwise ("none": uncalibrated). The model carries its drift reference (the
    training features' quantile bins and the class distribution of its predictions on them).
    `progress` receives the tuning's progress lines (one per successive-halving rung).
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model_type {model_type!r}; choose one of {MODEL_TYPES}")
    if not len(train) or not len(validation):
        raise ValueError(f"cannot train on {len(train)} training and {len(validation)} validation rows")
    X_tr, y_tr = encode(train), encode_labels(train["label"])
    X_va, y_va = encode(validation), encode_labels(validation["label"])
    if hyperparameter_tuning:
        if candidates is None:
            candidates = sample_candidates(model_type, tuning_candidates, random_state, search_space)
        params, estimator, val_f1, trials = successive_halving(model_type, candidates, X_tr, y_tr, X_va, y_va,
                                                               random_state=random_state, progress=progress)
    else:
        params, trials = {}, []
        if progress is not None:
            progress(f"fitting {model_type} with its default parameters on {len(y_tr)} rows")
        estimator = fit_estimator(model_type, params, X_tr, y_tr, random_state)
        val_f1 = float(f1_score(y_va, estimator.predict(X_va), average="macro", zero_division=0))
    if progress is not None:
        progress(f"calibrating on {len(y_va)} validation rows (validation macro-F1 {val_f1:.4f} before calibration)")
    if calibration_method == "none":
        calibrator, method = None, "none"
    else:
        calibrator, method = calibrate(estimator.predict_proba(X_va), y_va, calibration_method)
    model = SpecialistModel(specialist, model_type, estimator, calibrator, method,
                            params={**DEFAULT_PARAMS[model_type], **params})
    model.drift_reference = build_reference(train[list(FEATURE_NAMES)], list(model.predict(train)),
                                            seed=random_state)
    info = {
        "n_train": int(len(y_tr)),
        "n_validation": int(len(y_va)),
        "val_macro_f1_uncalibrated": float(val_f1),
        "calibration_method": method,
        "tuning_trials": trials,
        "params": model.params,
    }
    return model, info
