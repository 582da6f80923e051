"""Evaluation (SPEC section 5): held-out metrics, plan-bootstrap intervals, the model and data gates.

`build_report(test, proba, champion)` is the validation report; `evaluate_gates(metrics)` the minimum
metrics verdict; `champion_comparison` the `promote_if_better` rule; `training_data_problems` the data
gates that block training.
"""

from hive_assets.evaluation._bootstrap import bootstrap_intervals
from hive_assets.evaluation._gates import (
    DEFAULT_MIN_SAMPLES, DEFAULT_MIN_TRAINING_SAMPLES, MIN_CLASS_SHARE, PROMOTE_MAX_REGRESSION,
    PROMOTE_MIN_IMPROVEMENT, GateVerdict, champion_comparison, evaluate_gates, minimum_metrics,
    training_data_problems,
)
from hive_assets.evaluation._metrics import point_metrics
from hive_assets.evaluation._report import build_report, metrics_table_markdown

__all__ = [
    "DEFAULT_MIN_SAMPLES", "DEFAULT_MIN_TRAINING_SAMPLES", "MIN_CLASS_SHARE", "PROMOTE_MAX_REGRESSION",
    "PROMOTE_MIN_IMPROVEMENT", "GateVerdict", "bootstrap_intervals", "build_report", "champion_comparison",
    "evaluate_gates", "metrics_table_markdown", "minimum_metrics", "point_metrics", "training_data_problems",
]
