"""Feature contract (SPEC section 3): one definition used by training and serving, versioned.

`plan_features(plan)` is the single-plan (serving) path, `features_frame(plans)` the vectorised batch
(training) path; they agree to 1e-9 on every feature. Imports only numpy and pandas: specialist pods
import this module (stable path, SPEC section 9).
"""

from hive_assets.features._batch import features_frame
from hive_assets.features._schema import (
    CATEGORICAL_FEATURES, FEATURE_NAMES, FEATURE_SCHEMA_VERSION, NUMERIC_FEATURES,
)
from hive_assets.features._single import plan_features

__all__ = [
    "CATEGORICAL_FEATURES",
    "FEATURE_NAMES",
    "FEATURE_SCHEMA_VERSION",
    "NUMERIC_FEATURES",
    "features_frame",
    "plan_features",
]
