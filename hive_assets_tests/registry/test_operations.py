"""Registry operations against a real `mlflow server` process: register, promote, rollback, alias, the
time-T history, refusals that change nothing, and the Production mirror seen from a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import numpy as np
import pytest

from hive_assets import registry
from hive_assets.features import features_frame
from hive_assets_tests.registry.conftest import ledger, log_run, record_gate, registry_state

pytestmark = pytest.mark.services
ME = "user:tester"


def _register_all(client, store, runs, specialist="business", gates=None):
    versions = []
    for i, run_id in enumerate(runs):
        record_gate(store, specialist, run_id, passed=True if gates is None else gates[i])
        versions.append(registry.register(client, store, specialist, run_id, actor=ME)["version"])
    return versions


def _champion(client, specialist="business"):
    holder = registry.alias_version(client, specialist, registry.CHAMPION)
    return holder.version if holder else None


def test_registering_a_run_twice_gives_one_version_and_one_ledger_row(clean_registry, store, business_runs,
                                                                     monkeypatch):
    client = clean_registry
    monkeypatch.setenv("HIVE_SIMULATED_NOW", "2026-01-08T00:00:00Z")  # a simulated home
    record_gate(store, "business", business_runs[0])
    first = registry.register(client, store, "business", business_runs[0], actor=ME)
    again = registry.register(client, store, "business", business_runs[0], actor=ME)
    assert (first["version"], first["created"]) == ("1", True)
    assert (again["version"], again["created"]) == ("1", False)
    assert len(client.search_model_versions("name='business-evaluator'")) == 1
    version = client.get_model_version("business-evaluator", "1")
    assert version.run_id == business_runs[0]
    assert version.tags["validation_gate"] == "passed" and version.tags["data_snapshot_hash"] == "snap0"
    assert version.tags["dagster_partition"] == "business"
    rows = [r for r in ledger(store, "business") if r["kind"] == "registration"]
    assert len(rows) == 1 and rows[0]["model_version"] == "1" and rows[0]["actor"] == ME
    listed = registry.list_versions(client, store, "business")[0]
    assert listed["gate"] == "passed" and listed["macro_f1"] is None  # no metric tag: no number
    # registered when the platform clock said so (MLflow's creation_timestamp is the wall clock's)
    assert listed["created_at"] == int(datetime(2026, 1, 8, tzinfo=timezone.utc).timestamp() * 1000)
    client.set_model_version_tag("business-evaluator", "1", "metric.macro_f1", "0.8123")
    listed = registry.list_versions(client, store, "business")[0]
    assert isinstance(listed["macro_f1"], float) and listed["macro_f1"] == 0.8123  # a number in --json, not text
    client.set_model_version_tag("business-evaluator", "1", "metric.macro_f1", "by hand")
    assert registry.list_versions(client, store, "business")[0]["macro_f1"] is None


def test_promote_moves_champion_with_a_ledger_row_and_rollback_restores_the_previous(clean_registry, store,
                                                                                     business_runs):
    client = clean_registry
    v1, v2, _, _ = _register_all(client, store, business_runs)
    first = registry.promote(client, store, "business", v1, actor=ME, reason="first", dagster_run_id="r1")
    assert _champion(client) == "1" and first["previous_version"] is None
    second = registry.promote(client, store, "business", v2, actor=ME, reason="better", dagster_run_id="r2")
    assert _champion(client) == "2" and second["previous_version"] == "1"
    row = registry.last_alias_row(store, "business", registry.CHAMPION)
    assert (row["kind"], row["model_version"], row["details"]["previous_version"]) == ("promotion", "2", "1")
    assert (row["actor"], row["reason"], row["dagster_run_id"], row["data_snapshot_hash"]) == (ME, "better", "r2",
                                                                                               "snap1")
    # promoting the holder again changes nothing
    n = len(ledger(store, "business"))
    again = registry.promote(client, store, "business", v2, actor=ME)
    assert not again["moved"] and not again["recorded"] and len(ledger(store, "business")) == n

    back = registry.rollback(client, store, "business", actor=ME, reason="regression", dagster_run_id="r3")
    assert _champion(client) == "1" and back["previous_version"] == "2"
    row = registry.last_alias_row(store, "business", registry.CHAMPION)
    assert (row["kind"], row["model_version"], row["details"]["rolled_back_from"]) == ("rollback", "1", "2")
    assert registry.ledger_agrees(client, store, "business")
    # rollback to a given version
    registry.rollback(client, store, "business", target_version="2", actor=ME)
    assert _champion(client) == "2"


def test_history_answers_who_held_champion_at_time_t(clean_registry, store, business_runs):
    client = clean_registry
    versions = _register_all(client, store, business_runs[:3])
    before_any = datetime.now(timezone.utc)
    observed = []  # (a time strictly inside the tenure, the version the registry held then)
    for version in versions:
        registry.promote(client, store, "business", version, actor=ME, reason=f"promote v{version}")
        time.sleep(0.05)
        observed.append((datetime.now(timezone.utc), _champion(client)))
        time.sleep(0.05)
    registry.rollback(client, store, "business", actor="sensor:drift", reason="drift")
    time.sleep(0.05)
    observed.append((datetime.now(timezone.utc), _champion(client)))
    assert [v for _, v in observed] == ["1", "2", "3", "2"]

    assert registry.holder_at(store, "business", before_any) is None
    for at, version in observed:
        tenure = registry.holder_at(store, "business", at)
        assert tenure.version == version and tenure.since <= at and (tenure.until is None or at < tenure.until)
    last = registry.holder_at(store, "business")
    assert (last.kind, last.actor, last.reason, last.previous_version) == ("rollback", "sensor:drift", "drift", "3")
    # a naive time is UTC
    at, version = observed[1]
    assert registry.holder_at(store, "business", at.replace(tzinfo=None)).version == version
    history = registry.alias_history(store, "business")
    assert [t.version for t in history] == ["1", "2", "3", "2"]
    assert all(a.until == b.since for a, b in zip(history, history[1:])) and history[-1].until is None


def test_refused_operations_change_neither_registry_nor_ledger(clean_registry, store, business_runs, small_models,
                                                               mlflow_server):
    client = clean_registry
    models, _ = small_models
    v1, v2, v3, _ = _register_all(client, store, business_runs, gates=[True, True, False, True])
    registry.promote(client, store, "business", v1, actor=ME)
    tech_run, _ = log_run(mlflow_server, "technical", models[0])
    record_gate(store, "technical", tech_run)
    registry.register(client, store, "technical", tech_run, actor=ME)
    # a technical run registered (by hand, in MLflow) under the business model
    source = client.get_model_version("technical-evaluator", "1").source
    stray = client.create_model_version("business-evaluator", source=source, run_id=tech_run,
                                        model_id=source.removeprefix("models:/"), tags={"dagster_partition": "technical"})
    before = (registry_state(client, "business"), registry_state(client, "technical"), ledger(store, "business"),
              ledger(store, "technical"))

    refusals = [
        (lambda: registry.promote(client, store, "marketing", "1", actor=ME), "unknown specialist"),
        (lambda: registry.promote(client, store, "business", "42", actor=ME), "no version 42"),
        (lambda: registry.set_alias(client, store, "business", "challenger", "technical-evaluator/1", actor=ME),
         "belongs to another model"),
        (lambda: registry.set_alias(client, store, "business", "challenger", stray.version, actor=ME),
         "trained for the technical specialist"),
        (lambda: registry.set_alias(client, store, "business", "ab-test-v1", v2, actor=ME), "names version 1"),
        # the champion as its own challenger: it was set, and a running test then routed nothing to it
        (lambda: registry.set_alias(client, store, "business", "challenger", v1, actor=ME),
         "v1 is the champion: the challenger must be another version"),
        (lambda: registry.rollback(client, store, "business", actor=ME), "no previous champion"),
        (lambda: registry.rollback(client, store, "technical", actor=ME), "no previous champion"),
        (lambda: registry.promote(client, store, "business", v3, actor=ME), "validation gate failed"),
        (lambda: registry.set_alias(client, store, "business", "champion", v3, actor=ME), "validation gate failed"),
        # a challenger serves production traffic once the next A/B look opens its test: the same rule
        (lambda: registry.set_alias(client, store, "business", "challenger", v3, actor=ME), "validation gate failed"),
        (lambda: registry.set_alias(client, store, "business", "challenger", v3, actor=ME, force=True),
         "needs a --reason"),
        (lambda: registry.promote(client, store, "business", v3, actor=ME, force=True), "needs a --reason"),
        (lambda: registry.register(client, store, "business", tech_run, actor=ME), "trained the technical"),
        (lambda: registry.register(client, store, "business", "0" * 32, actor=ME), "no MLflow run"),
    ]
    for action, message in refusals:
        with pytest.raises(registry.RegistryError, match=message):
            action()
    after = (registry_state(client, "business"), registry_state(client, "technical"), ledger(store, "business"),
             ledger(store, "technical"))
    assert after == before

    forced = registry.promote(client, store, "business", v3, actor=ME, force=True, reason="hotfix, gate flaky")
    assert forced["gate"] == "failed" and _champion(client) == "3"
    row = registry.last_alias_row(store, "business", registry.CHAMPION)
    assert row["details"]["forced"] is True and row["reason"] == "hotfix, gate flaky"


def test_alias_moves_are_ledgered_and_a_move_outside_the_ledger_is_reconciled(clean_registry, store, business_runs):
    client = clean_registry
    v1, v2, v3, _ = _register_all(client, store, business_runs)
    registry.set_alias(client, store, "business", "challenger", v2, actor=ME)
    assert client.get_model_version_by_alias("business-evaluator", "challenger").version == "2"
    assert registry.last_alias_row(store, "business", "challenger")["model_version"] == "2"
    registry.promote(client, store, "business", v1, actor=ME)
    # someone moves champion in the MLflow UI: the next operation records that move first
    client.set_registered_model_alias("business-evaluator", "champion", v2)
    assert not registry.ledger_agrees(client, store, "business")
    assert registry.previous_champion(client, store, "business") == "1"
    rows = ledger(store, "business")
    with pytest.raises(registry.RegistryError, match="not in the ledger"):  # "previous" is ambiguous here
        registry.rollback(client, store, "business", actor=ME)
    assert ledger(store, "business") == rows
    registry.promote(client, store, "business", v3, actor=ME)
    assert [t.version for t in registry.alias_history(store, "business")] == ["1", "2", "3"]
    assert registry.holder_at(store, "business").previous_version == "2"


def test_a_version_set_as_challenger_again_after_its_test_closed_gets_a_new_tenure(clean_registry, store,
                                                                                    business_runs, monkeypatch):
    """After a test closed (its `challenger` alias removed and its `ab_test_closed` row written), setting the same
    version as challenger again moved the alias but wrote no ledger row ("ledger already agreed", comparing with
    the last alias row only): `deploy history` said nobody held the alias while MLflow said v2 did."""
    client = clean_registry
    monkeypatch.setenv("HIVE_SIMULATED_NOW", "2026-03-02T01:00:00Z")
    v1, v2, _, _ = _register_all(client, store, business_runs)
    registry.set_alias(client, store, "business", "champion", v1, actor=ME)
    registry.set_alias(client, store, "business", "challenger", v2, actor=ME)
    monkeypatch.setenv("HIVE_SIMULATED_NOW", "2026-03-02T02:00:00Z")
    # a test's closure as rollout writes it: the alias removed, then the ledger row
    client.delete_registered_model_alias("business-evaluator", "challenger")
    registry.record_decision(store, "business", "ab_test_closed", actor=ME, reason="stopped", model_version=v2,
                             details={"status": "stopped", "test_id": "t2"})
    assert registry.holder_at(store, "business", alias="challenger") is None
    result = registry.set_alias(client, store, "business", "challenger", v2, actor=ME)
    assert result["moved"] and result["recorded"]
    holder = registry.holder_at(store, "business", alias="challenger")
    assert holder is not None and holder.version == v2 and holder.until is None
    assert client.get_model_version_by_alias("business-evaluator", "challenger").version == v2
    rows = len(ledger(store, "business"))
    again = registry.set_alias(client, store, "business", "challenger", v2, actor=ME)  # now held: nothing new
    assert not again["moved"] and not again["recorded"] and len(ledger(store, "business")) == rows
    # the same after a closure, but the alias set by hand in MLflow's UI: reconcile records it (it compared
    # with the last alias row only, and the history said nobody held the alias)
    monkeypatch.setenv("HIVE_SIMULATED_NOW", "2026-03-02T03:00:00Z")
    client.delete_registered_model_alias("business-evaluator", "challenger")
    registry.record_decision(store, "business", "ab_test_closed", actor=ME, reason="stopped", model_version=v2,
                             details={"status": "stopped", "test_id": "t3"})
    client.set_registered_model_alias("business-evaluator", "challenger", v2)
    monkeypatch.setenv("HIVE_SIMULATED_NOW", "2026-03-02T04:00:00Z")
    assert registry.reconcile(client, store, "business", "challenger", actor=ME)["recorded"]
    assert registry.holder_at(store, "business", alias="challenger").version == v2
    assert registry.reconcile(client, store, "business", "challenger", actor=ME) is None  # recorded once


SCORE = """
import json, sys
import mlflow, pandas as pd
from hive_assets.features import features_frame
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
plans = json.load(open(sys.argv[3]))
out = model.predict(features_frame(plans))
print(json.dumps(out[[c for c in out.columns if c.startswith("p_")]].to_numpy().tolist()))
"""


def test_production_mirror_follows_champion_and_a_fresh_process_serves_it(clean_registry, store, business_runs,
                                                                          small_models, monkeypatch, tmp_path,
                                                                          mlflow_server):
    client = clean_registry
    models, plans = small_models
    v1, v2, _, _ = _register_all(client, store, business_runs)
    registry.promote(client, store, "business", v1, actor=ME)
    assert client.get_model_version("business-evaluator", v1).current_stage == "None"  # off by default

    monkeypatch.setenv(registry.MIRROR_PRODUCTION_ENV, "true")
    registry.promote(client, store, "business", v2, actor=ME)
    stages = {v.version: v.current_stage for v in client.search_model_versions("name='business-evaluator'")}
    assert stages["2"] == "Production" and stages["1"] != "Production"
    registry.rollback(client, store, "business", actor=ME)
    stages = {v.version: v.current_stage for v in client.search_model_versions("name='business-evaluator'")}
    assert stages["1"] == "Production" and stages["2"] == "Archived"

    plans_file = tmp_path / "plans.json"
    plans_file.write_text(json.dumps(plans, default=str))
    # TMPDIR: a plain pyfunc load (as a service outside the platform does) leaves its download there for good
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", SCORE, mlflow_server, "models:/business-evaluator/Production",
                          str(plans_file)], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    served = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    frame = features_frame(json.loads(plans_file.read_text()))
    assert np.allclose(served, models[0].predict_proba(frame))  # v1 is models[0]: the champion
    assert not np.allclose(served, models[1].predict_proba(frame))  # and not v2's predictions

    monkeypatch.setenv(registry.MIRROR_PRODUCTION_ENV, "10%")
    with pytest.raises(ValueError, match="HIVE_MIRROR_PRODUCTION_STAGE"):
        registry.mirror_production_enabled()


def test_a_clock_set_back_refuses_decisions_that_would_sort_before_earlier_ones(clean_registry, store, business_runs,
                                                                                 monkeypatch):
    """A clock pinned back (`hive clock pin` to an earlier time) made a promotion's row sort before the ones
    already written: `deploy history` ended the new champion's tenure at once, `hive status` then said the
    alias had been moved outside the platform, and its suggested promote wrote another back-dated row. Every
    operation is refused before its first write while the clock is over 5 minutes before the specialist's
    latest decision; within that skew (hosts' clocks) it goes on."""
    client = clean_registry
    monkeypatch.setenv("HIVE_SIMULATED_NOW", "2026-06-01T12:00:00Z")
    v1, v2, v3, _ = _register_all(client, store, business_runs)
    registry.promote(client, store, "business", v1, actor=ME, reason="first")
    before, intents_before = ledger(store, "business"), store.count("decision_intents")

    monkeypatch.setenv("HIVE_SIMULATED_NOW", "2026-05-31T12:00:00Z")  # a day back
    for attempt in (lambda: registry.promote(client, store, "business", v2, actor=ME),
                    lambda: registry.rollback(client, store, "business", target_version=v2, actor=ME),
                    lambda: registry.set_alias(client, store, "business", "challenger", v2, actor=ME),
                    lambda: registry.register(client, store, "business", business_runs[3], actor=ME)):
        with pytest.raises(registry.RegistryError, match=r"clock \(2026-05-31 12:00 UTC\) is before the ledger's "
                                                         r"latest decision \(2026-06-01 12:00 UTC"):
            attempt()
    assert _champion(client) == v1 and registry.alias_version(client, "business", registry.CHALLENGER) is None
    assert ledger(store, "business") == before and store.count("decision_intents") == intents_before
    assert len(client.search_model_versions("name='business-evaluator'")) == 4

    monkeypatch.setenv("HIVE_SIMULATED_NOW", "2026-06-01T11:57:00Z")  # 3 minutes back: another host's clock
    registry.promote(client, store, "business", v2, actor=ME)
    assert _champion(client) == v2
    holders = [t.version for t in registry.alias_history(store, "business", registry.CHAMPION)]
    assert holders[-2:] == [v1, v2]


def test_an_idempotency_key_names_one_rollback(clean_registry, store, business_runs):
    """Reusing a rollback's key for another target did nothing and said "already done ... give
    --target-version", although a target was given: it is refused, naming the key's rollback."""
    client = clean_registry
    v1, v2, v3, _ = _register_all(client, store, business_runs)
    registry.promote(client, store, "business", v1, actor=ME)
    registry.promote(client, store, "business", v3, actor=ME)
    registry.rollback(client, store, "business", target_version=v2, actor=ME, idempotency_key="k1")
    again = registry.rollback(client, store, "business", target_version=v2, actor=ME, idempotency_key="k1")
    assert again["noop"] and _champion(client) == v2
    n = len(ledger(store, "business"))
    with pytest.raises(registry.RegistryError, match="key 'k1' names the rollback to v2, not to v1"):
        registry.rollback(client, store, "business", target_version=v1, actor=ME, idempotency_key="k1")
    assert _champion(client) == v2 and len(ledger(store, "business")) == n


def test_a_run_registered_by_hand_carries_the_tags_of_a_dagster_registration(clean_registry, store, mlflow_server,
                                                                             monkeypatch):
    """`hive deploy register` (this function) tagged a version with the model type asked for (`auto`) and no
    training configuration, so the nothing-changed rule never matched it: it now tags what the training run
    recorded, the family chosen and the training configuration, as `registered_model_version` does."""
    import dagster as dg

    from hive_assets.cli._train import TRAIN_SELECTION
    from hive_assets.config import AUTO_CANDIDATES
    from hive_assets.defs import build_defs
    from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
    from hive_assets.simulator import simulate

    client, experiment = clean_registry, "register-by-hand"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    simulate(store, plans=2500, days=45, seed=21, now=datetime.now(timezone.utc), specialists=["business"])
    resources = {"document_store": DocumentStoreResource(),
                 "mlflow": MlflowResource(tracking_uri=mlflow_server, experiment_name=experiment),
                 "platform": PlatformSettings()}
    instance, assets = dg.DagsterInstance.ephemeral(), list(build_defs().assets)

    def train():  # what `hive train` materializes (model_type auto, its default)
        return dg.materialize(assets, selection=TRAIN_SELECTION, partition_key="business", resources=resources,
                              instance=instance)

    trained = train().output_for_node("trained_model")
    assert trained["model_type"] in AUTO_CANDIDATES
    result = registry.register(client, store, "business", trained["mlflow_run_id"], actor=ME)
    version = client.get_model_version("business-evaluator", result["version"])
    assert version.tags["model_type"] == trained["model_type"]  # the family training chose, not `auto`
    assert version.tags[registry.TRAINING_CONFIG_TAG] == trained["training_config"]
    assert version.tags["data_snapshot_hash"] == trained["data_snapshot_hash"]
    assert version.tags["validation_gate"] == "passed" and float(version.tags["metric.macro_f1"]) > 0
    # the tags a Dagster registration sets (`version_tags`), the Dagster run being the one that trained
    assert version.tags["dagster_run_id"] == client.get_run(trained["mlflow_run_id"]).data.tags["dagster.run_id"]
    assert set(version.tags) == {"dagster_run_id", "dagster_partition", "data_snapshot_hash", "feature_schema_version",
                                 "model_type", "training_config", "validation_gate", "metric.accuracy",
                                 "metric.macro_f1", "metric.confidence_mean", registry.ARTIFACT_CHECKSUM_TAG}

    # promoted by hand, it is what a retraining on the same data and configuration compares itself with
    registry.promote(client, store, "business", result["version"], actor=ME)
    again = train()
    assert "trained_model" not in {e.asset_key.path[-1] for e in again.all_events
                                   if e.event_type_value == "ASSET_MATERIALIZATION"}
    skip = store.find_one("model_decisions", {"kind": registry.SKIPPED_UNCHANGED})
    assert skip["dagster_run_id"] == again.run_id and skip["model_version"] == result["version"]
