"""Probability calibration on the validation split with sklearn's own CalibratedClassifierCV."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from hive_assets.config import CLASSES
from hive_assets.training._estimators import LINEAR_MODEL_TYPES

# Below this many validation rows isotonic calibration overfits; Platt scaling is used instead.
ISOTONIC_MIN_ROWS = 1000
# ... except for the linear models: their probabilities are bent in a way Platt's S-curve does not fit
# (sparse_logistic on 255 / 750 validation rows: test debiased ECE 0.025-0.048 / 0.052-0.094 after sigmoid,
# 0.016-0.038 / 0.012-0.026 after isotonic; BENCHMARKS.md, learning curve, issue 24), so isotonic from here.
LINEAR_ISOTONIC_MIN_ROWS = 200
# The MLP calibrates like them (measured, BENCHMARKS.md issue 24 MLP: at 750 validation rows sigmoid left a
# test debiased ECE up to 0.065, isotonic at most 0.025; at 300 rows both stayed under the 0.05 gate).
EARLY_ISOTONIC_MODEL_TYPES: tuple[str, ...] = (*LINEAR_MODEL_TYPES, "mlp")


def default_method(model_type: str | None, n_validation: int) -> str:
    """Isotonic where the validation split is large enough for it (smaller for the linear models and the
    MLP), else sigmoid."""
    threshold = LINEAR_ISOTONIC_MIN_ROWS if model_type in EARLY_ISOTONIC_MODEL_TYPES else ISOTONIC_MIN_ROWS
    return "isotonic" if n_validation >= threshold else "sigmoid"


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


def calibrate(raw_val_proba: np.ndarray, y_val: np.ndarray, method: str | None = None,
              model_type: str | None = None) -> tuple[CalibratedClassifierCV, str]:
    """One calibrator fitted on every validation row of the frozen model (SPEC section 4). `method` None:
    `default_method` for `model_type`'s family and the validation rows."""
    method = method or default_method(model_type, len(y_val))
    passthrough = FrozenEstimator(ProbabilityPassthrough().fit())
    every_row = np.arange(len(y_val))
    # A frozen model needs no cross-validation: sklearn's default cv (stratified 5-fold; ensemble "auto" is
    # False for a FrozenEstimator) only re-split rows the frozen model predicts alike, to the same calibrator,
    # and raised "n_splits=5 cannot be greater than the number of members in each class" when every class had
    # under 5 validation rows. One split whose every row is both "fitted" (a no-op) and predicted gives the
    # same calibrator without that limit.
    calibrator = CalibratedClassifierCV(passthrough, method=method, cv=[(every_row, every_row)], ensemble=False)
    calibrator.fit(raw_val_proba, y_val)
    return calibrator, method
