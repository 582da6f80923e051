"""Serving helper: a registered model version turned into opinions, with the training-time features.

`load_evaluator(tracking_uri, "business")` loads `business-evaluator@champion` (or an alias or version
number) together with its stored feature schema; `evaluate(plan)` gives the recommendation, the
confidence (calibrated max class probability) and every class probability. A model trained on
another FEATURE_SCHEMA_VERSION than this code computes is refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from hive_assets.features import FEATURE_NAMES, features_frame, plan_features
from hive_assets.training import check_schema

if TYPE_CHECKING:  # scikit-learn is imported with the first model, not with serving
    from hive_assets.training import SpecialistModel


@dataclass(frozen=True)
class Evaluation:
    recommendation: str
    confidence: float
    probabilities: dict[str, float]
    model_version: str


class Evaluator:
    def __init__(self, model: SpecialistModel, version: str):
        check_schema(model.feature_names_in_, model.feature_schema_version, f"{model.specialist} model v{version}")
        self.model = model
        self.version = str(version)

    def evaluate(self, plan: Mapping) -> Evaluation:
        frame = pd.DataFrame([plan_features(plan)], columns=list(FEATURE_NAMES))
        proba = self.model.predict_proba(frame)[0]
        best = int(proba.argmax())
        return Evaluation(self.model.classes_[best], float(proba[best]),
                          {c: float(p) for c, p in zip(self.model.classes_, proba)}, self.version)

    def evaluate_many(self, plans: Iterable[Mapping]) -> list[Evaluation]:
        proba = self.model.predict_proba(features_frame(plans))
        return [Evaluation(self.model.classes_[int(p.argmax())], float(p.max()),
                           {c: float(x) for c, x in zip(self.model.classes_, p)}, self.version) for p in proba]


def load_evaluator(tracking_uri: str, specialist: str, alias_or_version: str = "champion") -> Evaluator | None:
    """The evaluator behind an alias (or a version number); None when the alias is not set."""
    from hive_assets.registry import _mlflow as registry

    client = registry.client_for(tracking_uri)
    if str(alias_or_version).isdigit():
        version = client.get_model_version(registry.model_name(specialist), str(alias_or_version))
    else:
        version = registry.alias_version(client, specialist, alias_or_version)
        if version is None:
            return None
    # schema check happens in SpecialistModel.load, before any prediction
    return Evaluator(registry.load_version_model(client, version), str(version.version))
