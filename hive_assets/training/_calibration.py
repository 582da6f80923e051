"""Probability calibration on the validation split with sklearn's own CalibratedClassifierCV."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from hive_assets.config import CLASSES

# Below this many validation rows isotonic calibration overfits; Platt scaling is used instead.
ISOTONIC_MIN_ROWS = 1000


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


def calibrate(raw_val_proba: np.ndarray, y_val: np.ndarray, method: str | None = None) -> tuple[CalibratedClassifierCV, str]:
    method = method or ("isotonic" if len(y_val) >= ISOTONIC_MIN_ROWS else "sigmoid")
    passthrough = FrozenEstimator(ProbabilityPassthrough().fit())
    calibrator = CalibratedClassifierCV(passthrough, method=method)
    calibrator.fit(raw_val_proba, y_val)
    return calibrator, method
