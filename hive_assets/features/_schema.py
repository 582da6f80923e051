"""The feature contract's names, order and version (SPEC section 3). Stored with every model version."""

from __future__ import annotations

FEATURE_SCHEMA_VERSION: str = "1.0.0"

NUMERIC_FEATURES: tuple[str, ...] = (
    "num_tasks",
    "num_edges",
    "density",
    "avg_out_degree",
    "max_in_degree",
    "max_out_degree",
    "task_depth_max",
    "critical_path_length",
    "max_parallelism",
    "parallelization_potential",
    "has_cyclic_dependencies",
    "weak_dependency_ratio",
    "total_duration_ms",
    "avg_duration_ms",
    "duration_variance",
    "duration_coefficient_of_variation",
    "capability_diversity",
    "workload_distribution_score",
    "risk_score",
    "complexity_score",
    "risk_complexity_product",
    "risk_adjusted_duration_estimate",
    "priority_score",
    "missing_duration_ratio",
    "dangling_dependency_count",
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("domain",)
FEATURE_NAMES: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES

PRIORITY_SCORES: dict[str, float] = {"low": 0.25, "normal": 0.5, "high": 0.75, "critical": 1.0}
DEFAULT_SCORE = 0.5
UNKNOWN_DOMAIN = "UNKNOWN"
