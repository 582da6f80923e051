"""Evaluation (SPEC section 5): held-out metrics, calibration, plan-bootstrap intervals, the gates.

`build_report(test, proba, champion, champion_proba)` is the validation report (metrics with 95% plan
bootstrap intervals, ECE and Brier, the champion on the same rows with paired intervals of the deltas,
every verdict; `not_computable`: the metrics a class without rows leaves undefined, None in the report);
`evaluate_gates` the minimum metrics, `calibration_gate` the ECE bound,
`non_inferiority` the champion comparison with intervals, `champion_comparison` the `promote_if_better`
rule, `training_data_problems` the data gates that block training; `gate_table_text` what the CLI prints.
"""

from hive_assets.evaluation._bootstrap import DEFAULT_N_BOOT, bootstrap_intervals, paired_bootstrap_deltas
from hive_assets.evaluation._gates import (
    DEFAULT_MIN_SAMPLES, DEFAULT_MIN_TRAINING_SAMPLES, MAX_ECE, MIN_CLASS_SHARE, NON_INFERIORITY_MARGIN,
    PROMOTE_MAX_REGRESSION, PROMOTE_MIN_IMPROVEMENT, GateVerdict, calibration_gate, champion_comparison,
    evaluate_gates, minimum_metrics, non_inferiority, training_data_problems,
)
from hive_assets.evaluation._metrics import (
    calibration_metrics, ece_noise_floor, expected_calibration_error, not_computable, point_metrics,
)
from hive_assets.evaluation._plots import confusion_matrix_png, reliability_diagram_png
from hive_assets.evaluation._report import (
    NOT_COMPUTABLE, build_report, gate_rows, gate_table_text, metrics_table_markdown,
)

__all__ = [
    "DEFAULT_MIN_SAMPLES", "DEFAULT_MIN_TRAINING_SAMPLES", "DEFAULT_N_BOOT", "MAX_ECE", "MIN_CLASS_SHARE",
    "NON_INFERIORITY_MARGIN", "NOT_COMPUTABLE", "PROMOTE_MAX_REGRESSION", "PROMOTE_MIN_IMPROVEMENT", "GateVerdict",
    "bootstrap_intervals", "build_report", "calibration_gate", "calibration_metrics", "champion_comparison",
    "confusion_matrix_png", "ece_noise_floor", "evaluate_gates", "expected_calibration_error", "gate_rows", "gate_table_text",
    "metrics_table_markdown", "minimum_metrics", "non_inferiority", "not_computable", "paired_bootstrap_deltas",
    "point_metrics", "reliability_diagram_png", "training_data_problems",
]
