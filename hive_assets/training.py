"""Splits, estimators, calibration and the stored model format (SPEC section 4).

The stored model is a directory, never a pickle:
- `schema.json`: specialist, model type, FEATURE_NAMES, FEATURE_SCHEMA_VERSION, encoded columns, classes;
- `estimator.ubj` (xgboost's native format) or `estimator.skops` (sklearn, skops with a trusted-type list);
- `calibrator.skops`: sklearn's CalibratedClassifierCV fitted on the base model's validation-split
  probabilities (a frozen pass-through estimator), so calibration code is sklearn's own and the
  xgboost booster never needs a generic serializer.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import f1_score
from sklearn.utils.class_weight import compute_sample_weight

from hive_assets.config import CLASSES
from hive_assets.features import CATEGORICAL_FEATURES, FEATURE_NAMES, FEATURE_SCHEMA_VERSION, NUMERIC_FEATURES

MODEL_TYPES = ("xgboost", "random_forest", "gradient_boosting")
DOMAIN_VOCABULARY = ("BUSINESS", "TECHNICAL", "SECURITY", "INFRASTRUCTURE", "BEHAVIOR", "OPERATIONAL", "COMPLIANCE")
ENCODED_COLUMNS = tuple(NUMERIC_FEATURES) + tuple(f"domain={d}" for d in DOMAIN_VOCABULARY) + ("domain=OTHER",)
SPLITS = ("train", "validation", "test")
# Below this many validation rows isotonic calibration overfits; Platt scaling is used instead.
ISOTONIC_MIN_ROWS = 1000

# Every type a stored sklearn/calibrator file may contain. skops refuses anything else on load.
TRUSTED_TYPES = [
    "hive_assets.training.ProbabilityPassthrough",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._gb.GradientBoostingClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.link.Interval",
    "sklearn.dummy.DummyClassifier",
    "sklearn.ensemble._gb._init_raw_predictions",
    "numpy.random._mt19937.MT19937",
    "numpy.random.mtrand.RandomState",
    "builtins.slice",
]


class ProbabilityPassthrough(ClassifierMixin, BaseEstimator):
    """A 'classifier' whose probabilities are its input: lets sklearn calibrate any model's output."""

    def __init__(self, n_classes: int = len(CLASSES)):
        self.n_classes = n_classes

    def fit(self, X=None, y=None):
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict_proba(self, X):
        return np.asarray(X, dtype=float)

    def predict(self, X):
        return np.argmax(self.predict_proba(X), axis=1)


def temporal_group_split(
    frame: pd.DataFrame, fractions: tuple[float, float] = (0.70, 0.85), time_col: str = "evaluated_at",
    group_col: str = "plan_id",
) -> pd.Series:
    """70/15/15 by time, grouped: every row of a plan lands in the split of the plan's first row."""
    if not len(frame):
        return pd.Series([], dtype=object, index=frame.index)
    groups = (
        frame.groupby(group_col, sort=False)
        .agg(first=(time_col, "min"), size=(time_col, "size"))
        .reset_index()
        .sort_values(["first", group_col], kind="stable")
    )
    start = groups["size"].cumsum() - groups["size"]
    total = len(frame)
    groups["split"] = np.where(start < fractions[0] * total, "train",
                               np.where(start < fractions[1] * total, "validation", "test"))
    return frame[group_col].map(dict(zip(groups[group_col], groups["split"]))).rename("split")


def encode(features: pd.DataFrame) -> np.ndarray:
    """Numeric features in contract order, then a fixed one-hot vocabulary for the domain."""
    numeric = features[list(NUMERIC_FEATURES)].to_numpy(dtype=float)
    domain = features[CATEGORICAL_FEATURES[0]].astype(str).str.upper().to_numpy()
    onehot = np.zeros((len(features), len(DOMAIN_VOCABULARY) + 1))
    index = {d: i for i, d in enumerate(DOMAIN_VOCABULARY)}
    cols = np.array([index.get(d, len(DOMAIN_VOCABULARY)) for d in domain], dtype=int)
    if len(cols):
        onehot[np.arange(len(cols)), cols] = 1.0
    return np.hstack([numeric, onehot])


def encode_labels(labels: pd.Series | list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(CLASSES)}
    return np.array([index[str(v)] for v in labels], dtype=int)


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


@dataclass
class SpecialistModel:
    specialist: str
    model_type: str
    estimator: Any
    calibrator: CalibratedClassifierCV | None
    calibration_method: str = "none"
    params: dict[str, Any] = field(default_factory=dict)
    feature_names: tuple[str, ...] = FEATURE_NAMES
    feature_schema_version: str = FEATURE_SCHEMA_VERSION
    classes: tuple[str, ...] = CLASSES

    def raw_proba(self, features: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(encode(features))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        proba = self.raw_proba(features)
        return self.calibrator.predict_proba(proba) if self.calibrator is not None else proba

    def predict(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(recommendation labels, confidence = calibrated max class probability)."""
        proba = self.predict_proba(features)
        return np.asarray(self.classes)[proba.argmax(axis=1)], proba.max(axis=1)

    # -- storage ------------------------------------------------------------------------------------
    def schema(self) -> dict[str, Any]:
        return {
            "specialist": self.specialist,
            "model_type": self.model_type,
            "feature_names": list(self.feature_names),
            "feature_schema_version": self.feature_schema_version,
            "encoded_columns": list(ENCODED_COLUMNS),
            "classes": list(self.classes),
            "calibration_method": self.calibration_method,
            "params": self.params,
        }

    def save(self, path: str | Path) -> Path:
        import skops.io as sio

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "schema.json").write_text(json.dumps(self.schema(), indent=2, default=str))
        if self.model_type == "xgboost":
            self.estimator.save_model(path / "estimator.ubj")
        else:
            sio.dump(self.estimator, path / "estimator.skops")
        if self.calibrator is not None:
            sio.dump(self.calibrator, path / "calibrator.skops")
        for name in ("estimator.skops", "calibrator.skops"):
            if (path / name).exists():
                unknown = set(sio.get_untrusted_types(file=path / name)) - set(TRUSTED_TYPES)
                if unknown:
                    raise TypeError(f"{name} holds types outside TRUSTED_TYPES: {sorted(unknown)}")
        return path

    @classmethod
    def load(cls, path: str | Path, expected_schema_version: str | None = FEATURE_SCHEMA_VERSION) -> "SpecialistModel":
        import skops.io as sio

        path = Path(path)
        schema = json.loads((path / "schema.json").read_text())
        if expected_schema_version is not None and schema["feature_schema_version"] != expected_schema_version:
            raise SchemaMismatch(
                f"model at {path} was trained on feature schema {schema['feature_schema_version']}, "
                f"this code computes {expected_schema_version}: retrain or serve with the matching version"
            )
        if schema["model_type"] == "xgboost":
            from xgboost import XGBClassifier

            estimator = XGBClassifier()
            estimator.load_model(path / "estimator.ubj")
        else:
            estimator = sio.load(path / "estimator.skops", trusted=TRUSTED_TYPES)
        calibrator = None
        if (path / "calibrator.skops").exists():
            calibrator = sio.load(path / "calibrator.skops", trusted=TRUSTED_TYPES)
        return cls(
            specialist=schema["specialist"], model_type=schema["model_type"], estimator=estimator,
            calibrator=calibrator, calibration_method=schema["calibration_method"], params=schema.get("params", {}),
            feature_names=tuple(schema["feature_names"]), feature_schema_version=schema["feature_schema_version"],
            classes=tuple(schema["classes"]),
        )


class SchemaMismatch(ValueError):
    """A model and the feature code disagree on FEATURE_SCHEMA_VERSION."""


def calibrate(raw_val_proba: np.ndarray, y_val: np.ndarray, method: str | None = None) -> tuple[CalibratedClassifierCV, str]:
    method = method or ("isotonic" if len(y_val) >= ISOTONIC_MIN_ROWS else "sigmoid")
    passthrough = FrozenEstimator(ProbabilityPassthrough().fit())
    calibrator = CalibratedClassifierCV(passthrough, method=method)
    calibrator.fit(raw_val_proba, y_val)
    return calibrator, method


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
