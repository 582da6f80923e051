"""MLflow "model from code" for a specialist evaluator (logged by path, so nothing is pickled).

`mlflow.pyfunc.load_model("models:/<specialist>-evaluator@champion")` returns a model whose
`predict(features_frame)` gives the class probabilities, the recommendation and its confidence.
The weights live in the `specialist_model` artifact directory (see `hive_assets.training`).
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class SpecialistEvaluator(PythonModel):
    def load_context(self, context):
        from hive_assets.training import SpecialistModel

        self.model = SpecialistModel.load(context.artifacts["specialist_model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        proba = self.model.predict_proba(model_input)
        out = pd.DataFrame(proba, columns=[f"p_{c}" for c in self.model.classes_], index=model_input.index)
        out["recommendation"] = list(self.model.classes_[proba.argmax(axis=1)])
        out["confidence"] = proba.max(axis=1)
        return out


mlflow.models.set_model(SpecialistEvaluator())
