"""The model types of SPEC section 4 and their default parameters and tuning space."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.class_weight import compute_sample_weight

MODEL_TYPES = ("xgboost", "random_forest", "gradient_boosting")

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 300, "max_depth": 4, "learning_rate": 0.05, "subsample": 0.9,
                "colsample_bytree": 0.9, "min_child_weight": 2.0},
    "random_forest": {"n_estimators": 300, "min_samples_leaf": 3, "max_features": "sqrt"},
    "gradient_boosting": {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.08, "subsample": 0.9},
}
TUNING_GRID: dict[str, dict[str, list[Any]]] = {
    "xgboost": {"max_depth": [3, 4, 6], "learning_rate": [0.05, 0.1], "n_estimators": [200, 400]},
    "random_forest": {"n_estimators": [200, 400], "max_depth": [None, 12], "min_samples_leaf": [1, 3]},
    "gradient_boosting": {"n_estimators": [100, 200], "max_depth": [2, 3], "learning_rate": [0.05, 0.1]},
}


def build_estimator(model_type: str, params: dict[str, Any] | None = None, random_state: int = 0):
    params = {**DEFAULT_PARAMS[model_type], **(params or {})}
    if model_type == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(objective="multi:softprob", tree_method="hist", n_jobs=2,
                             random_state=random_state, eval_metric="mlogloss", **params)
    if model_type == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(class_weight="balanced", n_jobs=2, random_state=random_state, **params)
    if model_type == "gradient_boosting":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(random_state=random_state, **params)
    raise ValueError(f"unknown model_type {model_type!r}; choose one of {MODEL_TYPES}")


def _fit(model_type: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray, random_state: int):
    estimator = build_estimator(model_type, params, random_state)
    # class weights balanced: as sample weights, which every model type accepts
    estimator.fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    return estimator
