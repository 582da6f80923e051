"""Nothing changed, nothing registered (issue 23): is a retraining's input the same as a live version's?

A version records the data it was trained on (`data_snapshot_hash`: every field of the labelled rows, plans included)
and how (`training_config`: a canonical text of the training parameters and the feature schema). When
both equal the champion's, or the open challenger's, a new training would register the same model again
and open an A/B test of the model against itself: `trained_model` skips instead and the ledger records
the skip (kind `skipped_unchanged`).

A version with the same data and configuration that holds no alias and that no decision ever touched is
another case: a run died between creating it and writing its alias and ledger rows. Training again would
leave it an orphan and register a duplicate; `trained_model` resumes it instead (`resumable_version`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hive_assets.data.store.base import DocumentStore
from hive_assets.registry._ledger import ALIAS_KINDS
from hive_assets.registry._mlflow import alias_version, model_name, run_json_artifact
from hive_assets.routing import CHALLENGER, CHAMPION

TRAINING_CONFIG_TAG = "training_config"
SKIPPED_UNCHANGED = "skipped_unchanged"
# the training step's output, logged last in its MLflow run: a run that has it finished training
TRAINED_MODEL_ARTIFACT = "trained_model.json"
# ledger kinds that mean a decision took the version up (an alias, or the end of its A/B test)
_DECIDED_KINDS = (*ALIAS_KINDS, "ab_test_closed")


def training_config_text(config: Mapping[str, Any]) -> str:
    """The canonical text of a training configuration (sorted keys, compact): equal configs, equal text."""
    return json.dumps(dict(config), sort_keys=True, separators=(",", ":"), default=str)


def unchanged_version(client, specialist: str, snapshot_hash: str, training_config: str) -> tuple[Any, str] | None:
    """(version, alias) of the champion or challenger trained on the same data snapshot with the same
    configuration, or None (then something changed: train). An empty snapshot hash never matches."""
    if not snapshot_hash:
        return None
    for alias in (CHAMPION, CHALLENGER):
        version = alias_version(client, specialist, alias)
        if version is None:
            continue
        tags = version.tags or {}
        if tags.get("data_snapshot_hash") == snapshot_hash and tags.get(TRAINING_CONFIG_TAG) == training_config:
            return version, alias
    return None


def resumable_version(client, store: DocumentStore, specialist: str, snapshot_hash: str,
                      training_config: str) -> tuple[Any, dict[str, Any]] | None:
    """(version, its training step's output) of the newest version trained on the same data snapshot with
    the same configuration that holds no alias and that no ledger row ever gave an alias or closed a test
    for: a registration a dead run left unfinished. None when there is none (or its training run did not
    log its output: registered before this was recorded)."""
    if not snapshot_hash:
        return None
    found = client.search_model_versions(
        f"name='{model_name(specialist)}' and tags.data_snapshot_hash = '{snapshot_hash}'")
    for version in sorted(found, key=lambda v: -int(v.version)):
        if (version.tags or {}).get(TRAINING_CONFIG_TAG) != training_config or version.aliases:
            continue
        if store.count("model_decisions", {"specialist_type": specialist, "model_version": str(version.version),
                                           "kind": {"$in": list(_DECIDED_KINDS)}}):
            return None  # the newest such version was decided on: nothing was left unfinished
        # not logged: a version registered before its output was recorded
        output = run_json_artifact(client, version.run_id, TRAINED_MODEL_ARTIFACT) if version.run_id else None
        if not isinstance(output, dict) or output.get("mlflow_run_id") != version.run_id:
            return None
        return version, output
    return None


def nothing_changed_message(specialist: str, version: Any, alias: str) -> str:
    return (f"{specialist}: nothing changed since v{version.version} ({alias}): same data snapshot "
            f"{version.tags.get('data_snapshot_hash')} and training configuration; not retrained, nothing registered")
