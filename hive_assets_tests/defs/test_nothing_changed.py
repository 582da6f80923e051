"""Nothing changed, nothing registered (issue 23): a retraining on the same data snapshot with the same
training configuration as the champion trains nothing, registers nothing, opens no A/B test, and the
ledger says why. Real `mlflow server`, real Dagster runs."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pytest

from hive_assets import registry
from hive_assets.defs import build_defs
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.defs.training.jobs import retrain_specialist
from hive_assets.simulator import simulate
from hive_assets.data.store import SQLiteStore

pytestmark = pytest.mark.services


def _materialized(result) -> set[str]:
    return {e.asset_key.path[-1] for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}


def test_two_identical_retrains_the_second_registers_nothing_and_says_why(hive_home, own_mlflow_server, monkeypatch):
    mlflow_server = own_mlflow_server
    experiment = "nothing-changed"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=2500, days=45, seed=21, now=datetime.now(timezone.utc), specialists=["business"])
    resources = {"document_store": DocumentStoreResource(),
                 "mlflow": MlflowResource(tracking_uri=mlflow_server, experiment_name=experiment),
                 "platform": PlatformSettings()}
    instance = dg.DagsterInstance.ephemeral()
    client = registry.client_for(mlflow_server)
    assets = list(build_defs().assets)
    # the retraining chain (`retrain_specialist`'s): the review queue would ask for labels once a champion exists
    chain = retrain_specialist.selection

    first = dg.materialize(assets, selection=chain, partition_key="business", resources=resources, instance=instance)
    registered = first.output_for_node("registered_model_version")
    assert (registered["version"], registered["alias"]) == ("1", "champion")
    snapshot = first.output_for_node("raw_production_data").snapshot_hash()
    version = client.get_model_version("business-evaluator", "1")
    assert version.tags["data_snapshot_hash"] == snapshot and version.tags[registry.TRAINING_CONFIG_TAG]
    runs = len(client.search_runs([client.get_experiment_by_name(experiment).experiment_id]))
    ledger = store.count("model_decisions", {"specialist_type": "business"})

    second = dg.materialize(assets, selection=chain, partition_key="business", resources=resources, instance=instance)
    assert second.success
    assert second.output_for_node("raw_production_data").snapshot_hash() == snapshot
    # collected and featurized again (that is how the snapshot is known), then nothing else
    assert _materialized(second) == {"raw_production_data", "enhanced_features"}
    assert [v.version for v in client.search_model_versions("name='business-evaluator'")] == ["1"]
    assert client.get_model_version_by_alias("business-evaluator", "champion").version == "1"
    assert len(client.search_runs([client.get_experiment_by_name(experiment).experiment_id])) == runs
    assert store.count("ab_tests", {"specialist_type": "business"}) == 0
    # the ledger records the skip, and only the skip
    assert store.count("model_decisions", {"specialist_type": "business"}) == ledger + 1
    skip = store.find_one("model_decisions", {"kind": registry.SKIPPED_UNCHANGED})
    assert skip["dagster_run_id"] == second.run_id and skip["model_version"] == "1"
    assert skip["data_snapshot_hash"] == snapshot
    assert skip["reason"].startswith("business: nothing changed since v1 (champion)")
