"""Monitoring (SPEC section 8): drift statistics against the champion's training reference, and the
trigger rules the feedback and drift sensors apply.

- `build_reference(features, predicted_classes)`: stored with every model version at training time.
- `feature_drift(reference, window)` -> per-feature PSI (stored bin edges, floor 1e-4) and KS;
  `drift_decision(result, threshold, min_rows, alpha)`: drift only when the PSI is above the threshold
  AND beyond what sampling noise gives at the window's size.
- `feedback_trigger(...)`, run keys and the sensors' JSON cursor.
"""

from hive_assets.monitoring._drift import (
    DEFAULT_ALPHA, DEFAULT_MIN_ROWS, DEFAULT_THRESHOLD, PSI_FLOOR, REFERENCE_FORMAT_VERSION, build_reference,
    drift_decision, feature_drift, psi, psi_null_pvalue,
)
from hive_assets.monitoring._triggers import (
    DEFAULT_COOLDOWN, DEFAULT_FEEDBACK_THRESHOLD, SpecialistCursor, TriggerDecision, decode_cursor, drift_run_key,
    encode_cursor, feedback_run_key, feedback_trigger, time_bucket,
)

__all__ = [
    "DEFAULT_ALPHA", "DEFAULT_COOLDOWN", "DEFAULT_FEEDBACK_THRESHOLD", "DEFAULT_MIN_ROWS", "DEFAULT_THRESHOLD",
    "PSI_FLOOR", "REFERENCE_FORMAT_VERSION", "SpecialistCursor", "TriggerDecision", "build_reference",
    "decode_cursor", "drift_decision", "drift_run_key", "encode_cursor", "feature_drift", "feedback_run_key",
    "feedback_trigger", "psi", "psi_null_pvalue", "time_bucket",
]
