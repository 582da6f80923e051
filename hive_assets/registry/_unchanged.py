"""Nothing changed, nothing registered (issue 23): is a retraining's input the same as a live version's?

A version records the data it was trained on (`data_snapshot_hash`: ids and labels of the labelled rows)
and how (`training_config`: a canonical text of the training parameters and the feature schema). When
both equal the champion's, or the open challenger's, a new training would register the same model again
and open an A/B test of the model against itself: `trained_model` skips instead and the ledger records
the skip (kind `skipped_unchanged`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hive_assets.registry._mlflow import alias_version
from hive_assets.routing import CHALLENGER, CHAMPION

TRAINING_CONFIG_TAG = "training_config"
SKIPPED_UNCHANGED = "skipped_unchanged"


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


def nothing_changed_message(specialist: str, version: Any, alias: str) -> str:
    return (f"{specialist}: nothing changed since v{version.version} ({alias}): same data snapshot "
            f"{version.tags.get('data_snapshot_hash')} and training configuration; not retrained, nothing registered")
