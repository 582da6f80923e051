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


def _world(hive_home, mlflow_server: str, monkeypatch, experiment: str, specialists: list[str]):
    """(store, run) on simulated history of `specialists`: run(specialist, **kw) materializes the retraining
    chain (`retrain_specialist`'s: the review queue would ask for labels once a champion exists)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=2500, days=45, seed=21, now=datetime.now(timezone.utc), specialists=specialists)
    resources = {"document_store": DocumentStoreResource(),
                 "mlflow": MlflowResource(tracking_uri=mlflow_server, experiment_name=experiment),
                 "platform": PlatformSettings()}
    instance = dg.DagsterInstance.ephemeral()
    assets = list(build_defs().assets)

    def run(specialist: str, **kwargs):
        return dg.materialize(assets, selection=retrain_specialist.selection, partition_key=specialist,
                              resources=resources, instance=instance, **kwargs)

    return store, run


def test_two_identical_retrains_the_second_registers_nothing_and_says_why(hive_home, own_mlflow_server, monkeypatch):
    mlflow_server = own_mlflow_server
    experiment = "nothing-changed"
    store, run = _world(hive_home, mlflow_server, monkeypatch, experiment, ["business"])
    client = registry.client_for(mlflow_server)

    first = run("business")
    registered = first.output_for_node("registered_model_version")
    assert (registered["version"], registered["alias"]) == ("1", "champion")
    snapshot = first.output_for_node("raw_production_data").snapshot_hash()
    version = client.get_model_version("business-evaluator", "1")
    assert version.tags["data_snapshot_hash"] == snapshot and version.tags[registry.TRAINING_CONFIG_TAG]
    runs = len(client.search_runs([client.get_experiment_by_name(experiment).experiment_id]))
    ledger = store.count("model_decisions", {"specialist_type": "business"})

    second = run("business")
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


def test_a_registration_a_failure_cut_short_is_completed_by_the_next_run_never_registered_twice(
        hive_home, own_mlflow_server, monkeypatch):
    """A run that dies after creating the version (before its alias), or after the alias (before its ledger
    row): the next run of the same data and configuration completes what it left, trains nothing and
    registers no second version (the crashes are faults raised at those points: a killed process leaves
    the same registry and ledger)."""
    from hive_assets.registry import _operations

    mlflow_server = own_mlflow_server
    experiment = "interrupted-registration"
    store, run = _world(hive_home, mlflow_server, monkeypatch, experiment, ["business", "technical"])
    client = registry.client_for(mlflow_server)

    def training_runs() -> int:
        return len(client.search_runs([client.get_experiment_by_name(experiment).experiment_id]))

    def rows(specialist: str, kind: str) -> list[dict]:
        return list(store.find("model_decisions", {"specialist_type": specialist, "kind": kind}))

    # 1. business: the run dies after creating v1 and its registration row, before the champion alias
    def dies_before_the_alias(*args, **kwargs):
        raise dg.Failure("simulated crash before the alias", allow_retries=False)

    with monkeypatch.context() as patch:
        patch.setattr(registry, "ensure_alias", dies_before_the_alias)
        cut = run("business", raise_on_error=False)
    assert not cut.success
    v1 = client.get_model_version("business-evaluator", "1")
    assert not v1.aliases and len(rows("business", "registration")) == 1 and not rows("business", "alias_move")
    trained = training_runs()

    resumed = run("business")
    assert resumed.success
    assert resumed.output_for_node("trained_model")["mlflow_run_id"] == v1.run_id  # v1's model, not a new one
    assert training_runs() == trained
    assert [v.version for v in client.search_model_versions("name='business-evaluator'")] == ["1"]
    assert client.get_model_version_by_alias("business-evaluator", "champion").version == "1"
    assert [(r["model_version"], r["details"]["alias"]) for r in rows("business", "alias_move")] == [("1", "champion")]
    assert len(rows("business", "registration")) == 1

    # 2. technical: the run dies after the champion alias, before its ledger row
    record = _operations.record_decision

    def dies_before_the_alias_row(store_, specialist, kind, **kwargs):
        if kind == "alias_move":
            raise dg.Failure("simulated crash before the alias's ledger row", allow_retries=False)
        return record(store_, specialist, kind, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(_operations, "record_decision", dies_before_the_alias_row)
        cut = run("technical", raise_on_error=False)
    assert not cut.success
    assert client.get_model_version_by_alias("technical-evaluator", "champion").version == "1"
    assert not rows("technical", "alias_move")

    again = run("technical")
    assert again.success
    assert _materialized(again) == {"raw_production_data", "enhanced_features"}  # nothing changed: skipped
    assert [v.version for v in client.search_model_versions("name='technical-evaluator'")] == ["1"]
    moved = rows("technical", "alias_move")
    assert [(r["model_version"], r["details"]["alias"]) for r in moved] == [("1", "champion")]
    assert moved[0]["reason"].startswith("recorded after the fact") and moved[0]["dagster_run_id"] == again.run_id
    assert registry.holder_at(store, "technical").version == "1"
