"""`unchanged_version` (issue 23) against a real `mlflow server`: a retraining is skipped only when the
champion's or the open challenger's data snapshot hash AND training configuration both equal its own."""

from __future__ import annotations

import pytest

from hive_assets import registry
from hive_assets_tests.registry.conftest import record_gate

pytestmark = pytest.mark.services
NAME = "business-evaluator"
CONFIG_A = registry.training_config_text({"model_type": "random_forest", "feature_schema_version": "1"})
CONFIG_B = registry.training_config_text({"model_type": "xgboost", "feature_schema_version": "1"})


def _three_versions(client, store, runs) -> None:
    """v1 champion (snap0, config A), v2 challenger (snap1, config B), v3 without an alias (snap2, config A)."""
    for run_id in runs[:3]:
        record_gate(store, "business", run_id)
        registry.register(client, store, "business", run_id, actor="user:tester")
    for number, config in (("1", CONFIG_A), ("2", CONFIG_B), ("3", CONFIG_A)):
        client.set_model_version_tag(NAME, number, registry.TRAINING_CONFIG_TAG, config)
    client.set_registered_model_alias(NAME, registry.CHAMPION, "1")
    client.set_registered_model_alias(NAME, registry.CHALLENGER, "2")
    tags = {v.version: (v.tags["data_snapshot_hash"], v.tags[registry.TRAINING_CONFIG_TAG])
            for v in client.search_model_versions(f"name='{NAME}'")}
    assert tags == {"1": ("snap0", CONFIG_A), "2": ("snap1", CONFIG_B), "3": ("snap2", CONFIG_A)}


def _found(client, snapshot: str, config: str) -> tuple[str, str] | None:
    hit = registry.unchanged_version(client, "business", snapshot, config)
    return None if hit is None else (hit[0].version, hit[1])


def test_the_champion_s_or_the_challenger_s_hash_and_config_are_unchanged_nothing_else(clean_registry, store,
                                                                                      business_runs):
    client = clean_registry
    assert _found(client, "snap0", CONFIG_A) is None   # no model registered yet
    _three_versions(client, store, business_runs)
    assert _found(client, "snap0", CONFIG_A) == ("1", registry.CHAMPION)
    assert _found(client, "snap1", CONFIG_B) == ("2", registry.CHALLENGER)   # the open challenger counts too
    # the same data trained another way is a change: train
    assert _found(client, "snap0", CONFIG_B) is None
    assert _found(client, "snap1", CONFIG_A) is None
    # another version's config on the champion's data, and a version without an alias: changes
    assert _found(client, "snap2", CONFIG_A) is None
    assert _found(client, "snap9", CONFIG_A) is None
    version, alias = registry.unchanged_version(client, "business", "snap1", CONFIG_B)
    assert registry.nothing_changed_message("business", version, alias) == (
        "business: nothing changed since v2 (challenger): same data snapshot snap1 and training configuration; "
        "not retrained, nothing registered")


def test_an_empty_snapshot_hash_never_matches_even_a_version_tagged_with_an_empty_hash(clean_registry, store,
                                                                                       business_runs):
    client = clean_registry
    _three_versions(client, store, business_runs)
    client.set_model_version_tag(NAME, "1", "data_snapshot_hash", "")   # a champion whose snapshot was unknown
    assert client.get_model_version(NAME, "1").tags["data_snapshot_hash"] == ""
    assert _found(client, "", CONFIG_A) is None
    client.set_model_version_tag(NAME, "1", "data_snapshot_hash", "snap0")
    assert _found(client, "snap0", CONFIG_A) == ("1", registry.CHAMPION)
