"""Features and labels as the estimators see them: numeric features in contract order, one-hot domain."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hive_assets.config import CLASSES
from hive_assets.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES

DOMAIN_VOCABULARY = ("BUSINESS", "TECHNICAL", "SECURITY", "INFRASTRUCTURE", "BEHAVIOR", "OPERATIONAL", "COMPLIANCE")
ENCODED_COLUMNS = tuple(NUMERIC_FEATURES) + tuple(f"domain={d}" for d in DOMAIN_VOCABULARY) + ("domain=OTHER",)


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
