"""The model registry (SPEC section 6): MLflow operations, the alias policy, and the decision ledger.

Aliases are the truth: `champion` (production), `challenger` (in A/B), `ab-test-v<N>`. Every write is
idempotent, so a retry completes what a failure interrupted. `load_evaluator` serves a registered
version with the feature contract it was trained on.
"""

from hive_assets.registry._ledger import record_decision
from hive_assets.registry._mlflow import (
    ab_test_alias, alias_version, client_for, ensure_experiment, load_model, load_version_model, log_model,
    mirror_ab_split, model_name, move_alias, register_version, training_run_for,
)
from hive_assets.registry._policy import alias_for_new_version
from hive_assets.registry._serving import Evaluation, Evaluator, load_evaluator
from hive_assets.routing import CHALLENGER, CHAMPION

__all__ = [
    "CHALLENGER", "CHAMPION", "Evaluation", "Evaluator", "ab_test_alias", "alias_for_new_version", "alias_version",
    "client_for", "ensure_experiment", "load_evaluator", "load_model", "load_version_model", "log_model",
    "mirror_ab_split", "model_name", "move_alias", "record_decision", "register_version", "training_run_for",
]
