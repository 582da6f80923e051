"""Training (SPEC section 4): the grouped temporal split, the estimators, calibration, the stored model.

`train_model(specialist, train, validation, model_type, hyperparameter_tuning)` fits on the train split
with balanced class weights (`model_type="auto"`: each candidate family with its VALIDATION_GRIDS setting
chosen on validation, keeping the family best on validation macro-F1), tunes (successive halving on validation macro-F1) and calibrates on the
validation split and returns a `SpecialistModel` (scikit-learn conventions: `classes_`, `predict`,
`predict_proba`) that carries its drift reference and saves to files (xgboost native / skops), never a pickle.
"""

import importlib
from typing import TYPE_CHECKING

from hive_assets.training._defaults import (
    DEFAULT_SELECTION_MAX_ROWS, DEFAULT_TIME_BUDGET_SECONDS, DEFAULT_TUNING_CANDIDATES,
)
from hive_assets.training._encoding import ENCODED_COLUMNS, encode, encode_labels
from hive_assets.training._schema import SchemaMismatch, check_schema
from hive_assets.training._split import SPLITS, temporal_group_split

# What needs scikit-learn or scipy is imported on first use (PEP 562): their import is over a second of every
# process that loads the code location or serves, and most (a sensor tick, a `hive` verb) never fit.
_LAZY = {
    "_calibration": ("ISOTONIC_MIN_ROWS", "calibrate"),
    "_estimators": ("DEFAULT_PARAMS", "MLP_ADAM_MIN_ROWS", "MODEL_TYPES", "SEARCH_SPACE", "build_estimator",
                    "fit_estimator", "mlp_hidden_layers", "mlp_solver"),
    "_model": ("TRUSTED_TYPES", "SpecialistModel"),
    "_train": ("train_model",),
    "_tuning": ("VALIDATION_GRIDS", "choose_on_validation", "sample_candidates", "successive_halving"),
}
_LAZY_MODULE = {name: module for module, names in _LAZY.items() for name in names}

if TYPE_CHECKING:
    from hive_assets.training._calibration import ISOTONIC_MIN_ROWS, calibrate
    from hive_assets.training._estimators import (
        DEFAULT_PARAMS, MLP_ADAM_MIN_ROWS, MODEL_TYPES, SEARCH_SPACE, build_estimator, fit_estimator,
        mlp_hidden_layers, mlp_solver,
    )
    from hive_assets.training._model import TRUSTED_TYPES, SpecialistModel
    from hive_assets.training._train import train_model
    from hive_assets.training._tuning import (
        VALIDATION_GRIDS, choose_on_validation, sample_candidates, successive_halving,
    )


def __getattr__(name: str):
    if name not in _LAZY_MODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY_MODULE[name]}"), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_MODULE))


__all__ = [
    "DEFAULT_PARAMS", "DEFAULT_SELECTION_MAX_ROWS", "DEFAULT_TIME_BUDGET_SECONDS", "DEFAULT_TUNING_CANDIDATES", "ENCODED_COLUMNS", "ISOTONIC_MIN_ROWS", "MLP_ADAM_MIN_ROWS", "MODEL_TYPES",
    "SEARCH_SPACE", "SPLITS", "TRUSTED_TYPES", "VALIDATION_GRIDS", "SchemaMismatch", "SpecialistModel", "build_estimator",
    "calibrate", "check_schema", "choose_on_validation", "encode", "encode_labels", "fit_estimator", "mlp_hidden_layers", "mlp_solver", "sample_candidates", "successive_halving",
    "temporal_group_split", "train_model",
]
