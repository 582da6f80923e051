"""The feature-schema check a model and the feature code must pass, without scikit-learn: serving and the
code location import it at load, and scikit-learn's import is over a second of every process that never fits
(a sensor tick, a `hive` verb)."""

from __future__ import annotations

from collections.abc import Sequence

from hive_assets.features import FEATURE_NAMES, FEATURE_SCHEMA_VERSION


class SchemaMismatch(ValueError):
    """A model and the feature code disagree on FEATURE_SCHEMA_VERSION or the feature list."""


def check_schema(feature_names: Sequence[str], schema_version: str, what: str) -> None:
    """The one schema check, shared by loading (training side) and serving: refuse a model/code pair
    whose feature schema differs (SPEC section 3)."""
    if schema_version != FEATURE_SCHEMA_VERSION or tuple(feature_names) != FEATURE_NAMES:
        raise SchemaMismatch(
            f"{what} was trained on feature schema {schema_version}, this code computes "
            f"{FEATURE_SCHEMA_VERSION}: retrain, or serve with the matching hive-assets version"
        )
