"""The stored model (SPEC sections 3, 4, 6): a scikit-learn-style classifier, saved as files, never pickled.

A model is a directory:
- `schema.json`: specialist, model type, FEATURE_NAMES, FEATURE_SCHEMA_VERSION, encoded columns, classes;
- `estimator.ubj` (xgboost's native format) or `estimator.skops` (sklearn, skops with a trusted-type list:
  forests, gradient boosting, the standardized logistic regression and MLP pipelines);
- `calibrator.skops`: sklearn's CalibratedClassifierCV fitted on the base model's validation-split
  probabilities (a frozen pass-through estimator), so calibration code is sklearn's own and the
  xgboost booster never needs a generic serializer;
- `drift_reference.json` (optional): what the drift sensor compares production against.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin

from hive_assets.config import CLASSES
from hive_assets.features import FEATURE_NAMES, FEATURE_SCHEMA_VERSION
from hive_assets.training._encoding import ENCODED_COLUMNS, encode
from hive_assets.training._schema import check_schema

# Every type a stored sklearn/calibrator file may contain. skops refuses anything else on load.
TRUSTED_TYPES = [
    "hive_assets.training._calibration.ProbabilityPassthrough",
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
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",  # adam's state, kept by a fitted MLP
    "sklearn.preprocessing._label.LabelBinarizer",
    "sklearn.ensemble._gb._init_raw_predictions",
    "numpy.random._mt19937.MT19937",
    "numpy.random.mtrand.RandomState",
    "builtins.slice",
]


class SpecialistModel(ClassifierMixin):
    """A fitted, calibrated classifier over the feature contract, with scikit-learn's conventions:
    `classes_`, `predict_proba(features) -> (n, 3)`, `predict(features) -> labels`.

    `features` is a frame with the FEATURE_NAMES columns (`hive_assets.features.features_frame`).
    The confidence of an opinion is the calibrated max class probability (`predict_confidence`).
    """

    def __init__(self, specialist: str, model_type: str, estimator: Any, calibrator: Any = None,
                 calibration_method: str = "none", params: dict[str, Any] | None = None,
                 drift_reference: dict[str, Any] | None = None,
                 feature_names: Sequence[str] = FEATURE_NAMES,
                 feature_schema_version: str = FEATURE_SCHEMA_VERSION, classes: Sequence[str] = CLASSES):
        self.specialist = specialist
        self.model_type = model_type
        self.estimator = estimator
        self.calibrator = calibrator
        self.calibration_method = calibration_method
        self.params = dict(params or {})
        self.drift_reference = drift_reference
        self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        self.feature_schema_version = feature_schema_version
        self.classes_ = np.asarray(classes, dtype=object)

    def raw_proba(self, features: pd.DataFrame) -> np.ndarray:
        """The base estimator's probabilities, before calibration."""
        return self.estimator.predict_proba(encode(features))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        proba = self.raw_proba(features)
        return self.calibrator.predict_proba(proba) if self.calibrator is not None else proba

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """The recommended class of each row."""
        return self.classes_[self.predict_proba(features).argmax(axis=1)]

    def predict_confidence(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(recommended classes, confidence = calibrated max class probability)."""
        proba = self.predict_proba(features)
        return self.classes_[proba.argmax(axis=1)], proba.max(axis=1)

    # -- storage ------------------------------------------------------------------------------------
    def schema(self) -> dict[str, Any]:
        return {
            "specialist": self.specialist,
            "model_type": self.model_type,
            "feature_names": list(self.feature_names_in_),
            "feature_schema_version": self.feature_schema_version,
            "encoded_columns": list(ENCODED_COLUMNS),
            "classes": list(self.classes_),
            "calibration_method": self.calibration_method,
            "params": self.params,
        }

    def save(self, path: str | Path) -> Path:
        import skops.io as sio

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "schema.json").write_text(json.dumps(self.schema(), indent=2, default=str))
        if self.drift_reference is not None:
            (path / "drift_reference.json").write_text(json.dumps(self.drift_reference, default=str))
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
    def load(cls, path: str | Path, check: bool = True) -> "SpecialistModel":
        """Load a saved model; with `check`, refuse one whose feature schema differs from this code's."""
        import skops.io as sio

        path = Path(path)
        schema = json.loads((path / "schema.json").read_text())
        if check:
            check_schema(schema["feature_names"], schema["feature_schema_version"], f"model at {path}")
        if schema["model_type"] == "xgboost":
            from xgboost import XGBClassifier

            estimator = XGBClassifier()
            estimator.load_model(path / "estimator.ubj")
        else:
            estimator = sio.load(path / "estimator.skops", trusted=TRUSTED_TYPES)
        calibrator = None
        if (path / "calibrator.skops").exists():
            calibrator = sio.load(path / "calibrator.skops", trusted=TRUSTED_TYPES)
        reference_file = path / "drift_reference.json"
        return cls(
            specialist=schema["specialist"], model_type=schema["model_type"], estimator=estimator,
            calibrator=calibrator, calibration_method=schema["calibration_method"], params=schema.get("params", {}),
            drift_reference=json.loads(reference_file.read_text()) if reference_file.exists() else None,
            feature_names=schema["feature_names"], feature_schema_version=schema["feature_schema_version"],
            classes=schema["classes"],
        )
