"""Monitoring (SPEC section 8): drift statistics against the champion's training reference, the
trigger rules the feedback and drift sensors apply, and the documents they write.

- `build_reference(features, predicted_classes)`: stored with every model version at training time.
- `feature_drift(reference, window)` -> per-feature PSI (stored bin edges, floor 1e-4) and KS;
  `drift_decision(result, threshold, min_rows, alpha)`: drift when a feature's bias-corrected PSI (or the
  class mix's, against its own threshold) is above the threshold AND beyond sampling noise.
- `check_drift(store, client, specialist, now, settings)`: one drift check of one specialist (window of
  recent plans vs its champion's reference) -> `DriftCheck` with the `drift_monitoring` document.
- `trusted_feedback_count(store, specialist, since, policy)`: the feedback sensor's count, on indexes.
- `feedback_trigger(...)`, run keys (`attempt_run_key`: a trigger's retry after its run failed;
  `attempt_to_request`: which attempt a firing trigger requests; `UntrainableData`: a collection since the
  last training that could not train holds it until more feedback came) and the sensors' JSON cursor;
  `MonitoringSettings.from_env()`.
- `reaches_registry(selected_assets)` (stamped on `trained_model` as `REACHES_REGISTRY`) and
  `counts_as_last_training(stamp)`: which training the count and the cooldown start from.
- `drift_trigger(...)`: whether a drift retrains now or is held (run in flight, A/B test, cooldown).
- `record_trigger` / `update_trigger_status` (forward-only, idempotent), `with_retraining` (what a drift
  check led to: requested with its run key, or held and why) and `save_drift_check`; `evaluation_stamp` and
  `discard_unused`: what an evaluation whose result was not used (a UI preview) wrote is undone by the next.
- `psi_chart_png(features, threshold)` and `drift_changed(previous, decision, score, model_version=)`: what the UI shows.
- `platform_status(store, client, ...)`: what each specialist is doing (`hive status`, the UI's `platform_status`).
"""

from hive_assets.monitoring._charts import drift_changed, psi_chart_png
from hive_assets.monitoring._status import SpecialistStatus, format_status, platform_status, status_markdown
from hive_assets.monitoring._check import MODEL_UNAVAILABLE, DriftCheck, check_drift, drift_window, next_drift_check
from hive_assets.monitoring._drift import (
    DEFAULT_ALPHA, DEFAULT_MIN_ROWS, DEFAULT_PREDICTION_THRESHOLD, DEFAULT_THRESHOLD, PSI_FLOOR,
    REFERENCE_FORMAT_VERSION, build_reference, drift_decision, feature_drift, psi, psi_bias, psi_null_pvalue,
)
from hive_assets.monitoring._feedback import trusted_feedback_count
from hive_assets.monitoring._records import (
    DRIFT_CHECKS, EVALUATION, STATUS_RANK, TRIGGERS, discard_unused, evaluation_stamp, held_reason, record_trigger,
    save_drift_check, unlaunched_drift_request, update_trigger_status, with_retraining,
)
from hive_assets.monitoring._settings import MonitoringSettings
from hive_assets.monitoring._triggers import (
    DEFAULT_COOLDOWN, DEFAULT_FEEDBACK_THRESHOLD, MAX_TRIGGER_ATTEMPTS, REACHES_REGISTRY, DriftTrigger,
    SpecialistCursor, TriggerDecision, UntrainableData, attempt_run_key, attempt_to_request, counts_as_last_training,
    decode_cursor, drift_run_key, drift_trigger, encode_cursor, feedback_run_key, feedback_trigger, reaches_registry,
    time_bucket, waits_for_test,
)

__all__ = [
    "MODEL_UNAVAILABLE",
    "DEFAULT_ALPHA", "DEFAULT_COOLDOWN", "DEFAULT_FEEDBACK_THRESHOLD", "DEFAULT_MIN_ROWS",
    "DEFAULT_PREDICTION_THRESHOLD", "DEFAULT_THRESHOLD", "DriftTrigger", "drift_trigger", "psi_bias",
    "held_reason", "waits_for_test", "with_retraining",
    "REACHES_REGISTRY", "counts_as_last_training", "reaches_registry", "MAX_TRIGGER_ATTEMPTS", "attempt_run_key",
    "attempt_to_request",
    "DRIFT_CHECKS", "PSI_FLOOR", "REFERENCE_FORMAT_VERSION", "STATUS_RANK", "TRIGGERS", "DriftCheck",
    "MonitoringSettings", "SpecialistCursor", "SpecialistStatus", "format_status", "platform_status",
    "status_markdown", "TriggerDecision", "UntrainableData", "build_reference", "check_drift", "decode_cursor",
    "drift_decision", "drift_run_key", "drift_window", "encode_cursor", "feature_drift", "feedback_run_key",
    "feedback_trigger", "next_drift_check", "psi", "psi_null_pvalue", "record_trigger", "save_drift_check", "time_bucket",
    "trusted_feedback_count", "update_trigger_status", "drift_changed", "psi_chart_png", "unlaunched_drift_request",
    "EVALUATION", "discard_unused", "evaluation_stamp",
]
