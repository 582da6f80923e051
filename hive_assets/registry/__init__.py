"""The model registry (SPEC section 6): MLflow operations, the alias policy, the decision ledger, the
operator actions (register, promote, rollback, alias, list) and the ledger's history of who held an alias.

Aliases are the truth: `champion` (production), `challenger` (in A/B), `ab-test-v<N>`. Every write is
idempotent, so a retry completes what a failure interrupted; the ledger is written after the registry
moves, so it never records a move that did not happen. Decisions of more than one write (promote,
rollback, an A/B outcome) are recorded as intents first (`decision_intents`) and completed by whoever acts
on the specialist next (`complete_unfinished`); a rerun of a completed rollback is a no-op. `load_evaluator` serves a registered version with
the feature contract it was trained on.
"""

from hive_assets.registry._history import Tenure, alias_history, holder_at
from hive_assets.registry._links import dagster_run_url, model_version_url, run_url, ui_base
from hive_assets.registry._ledger import (
    ALIAS_KINDS, last_alias_row, latest_decision, latest_decision_at, latest_gate_verdict, record_decision,
)
from hive_assets.registry._mlflow import (
    ARTIFACT_CHECKSUM_TAG, ArtifactError, artifact_checksum, ab_test_alias, alias_version, client_for,
    hidden_model, http_refusal, http_refusal_words,
    ab_split_tags, ensure_experiment, load_model, load_version_model, log_model, mirror_ab_split, model_name,
    model_version,
    register_version, registered_model, release_version_models, run_json_artifact,
    training_run_for, training_run_of,
)
from hive_assets.registry._intents import (
    AB_OUTCOME, DONE, INTENDED, PROMOTE as PROMOTE_INTENT, ROLLBACK as ROLLBACK_INTENT, begin as begin_intent,
    completion_hint, finish as finish_intent, get as get_intent, interrupted as interrupted_intents,
    recorded_at as intent_recorded_at,
    specialists_with_unfinished, unfinished as unfinished_intents,
)
from hive_assets.registry._operations import (
    CLOCK_SKEW, GATE_TAG, check_clock, complete_intent, complete_unfinished, MIRROR_PRODUCTION_ENV, RegistryError, check_alias, check_gate,
    ensure_alias, gate_status,
    ledger_agrees, list_versions, mirror_production, mirror_production_enabled, parse_version_ref, previous_champion, promote,
    reconcile, record_registration, register, resolve_version, rollback, run_version_fields, set_alias,
    unrecorded_registrations, version_tags,
)
from hive_assets.registry._policy import alias_for_new_version
from hive_assets.registry._relocate import moved_home, moved_home_message, moved_home_problem, relocate_artifact_root
from hive_assets.registry._tracking import (
    FAILURE_REASON_TAG, collection_params, log_params, log_png, mark_run_failed, run_status, running_runs,
)
from hive_assets.registry._unchanged import (
    SKIPPED_UNCHANGED, TRAINED_MODEL_ARTIFACT, TRAINING_CONFIG_TAG, nothing_changed_message, resumable_version,
    training_config_text, unchanged_version,
)
from hive_assets.routing import CHALLENGER, CHAMPION

_SERVING = ("Evaluation", "Evaluator", "load_evaluator")


def __getattr__(name: str):
    """The serving loader on first use: it pulls in the model code (sklearn, xgboost), which the readers
    of the registry (`hive deploy list`, the ledger's history) never need."""
    if name in _SERVING:
        from hive_assets.registry import _serving

        return getattr(_serving, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "moved_home", "moved_home_message", "moved_home_problem", "relocate_artifact_root", "CLOCK_SKEW", "check_clock",
    "ARTIFACT_CHECKSUM_TAG", "ArtifactError", "artifact_checksum", "http_refusal", "http_refusal_words",
    "AB_OUTCOME", "DONE", "INTENDED", "PROMOTE_INTENT", "ROLLBACK_INTENT", "begin_intent", "complete_intent",
    "complete_unfinished", "completion_hint", "finish_intent", "get_intent", "interrupted_intents",
    "intent_recorded_at", "specialists_with_unfinished", "unfinished_intents",
    "FAILURE_REASON_TAG", "collection_params", "log_params", "log_png", "mark_run_failed", "run_status", "running_runs",
    "dagster_run_url", "model_version_url", "run_url", "ui_base",
    "ALIAS_KINDS", "CHALLENGER", "CHAMPION", "GATE_TAG", "MIRROR_PRODUCTION_ENV", "Evaluation", "Evaluator",
    "RegistryError", "Tenure", "ab_test_alias", "alias_for_new_version", "alias_history", "alias_version",
    "check_alias", "check_gate", "client_for", "ensure_alias", "ensure_experiment", "gate_status", "hidden_model",
    "holder_at",
    "last_alias_row",
    "latest_decision", "latest_decision_at", "latest_gate_verdict", "ledger_agrees", "list_versions", "load_evaluator", "load_model",
    "ab_split_tags", "record_registration", "unrecorded_registrations",
    "load_version_model", "log_model", "mirror_ab_split", "mirror_production", "mirror_production_enabled", "model_name",
    "model_version",
    "parse_version_ref", "previous_champion", "promote", "reconcile", "record_decision", "register", "release_version_models", "register_version",
    "registered_model",
    "run_json_artifact",
    "resolve_version", "rollback", "run_version_fields", "set_alias", "version_tags", "training_run_for",
    "training_run_of",
    "SKIPPED_UNCHANGED", "TRAINED_MODEL_ARTIFACT", "TRAINING_CONFIG_TAG", "nothing_changed_message", "resumable_version",
    "training_config_text", "unchanged_version",
]
