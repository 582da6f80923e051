"""Crash safety of registry writes: a real `mlflow server` killed in the middle of a promotion, and a
document-store write failed between the alias move and its ledger row (issue 8 item 6), then retried."""

from __future__ import annotations

import signal

import pytest

from hive_assets import registry
from hive_assets.data import StoreUnavailable
from hive_assets.defs.registry.assets import RegisterConfig, registered_model_version
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.defs.rollout.assets import ab_test_outcome
from hive_assets.defs.runs.lease import RUN_LEASE
from hive_assets.rollout import open_test
from hive_assets_tests.conftest import start_mlflow_server, stop_process
from hive_assets_tests.registry.conftest import ledger, log_run, record_gate

import dagster as dg

pytestmark = pytest.mark.services
ME = "user:tester"


def _stages(client):
    return {v.version: v.current_stage for v in client.search_model_versions("name='business-evaluator'")}


@pytest.mark.parametrize("kill_after", ["alias_moved", "production_mirrored"])
def test_killing_the_mlflow_server_mid_promotion_then_a_retry_completes(kill_after, tmp_path, store, small_models,
                                                                        monkeypatch):
    # fail fast on a dead server instead of MLflow's default retries with backoff
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    monkeypatch.setenv(registry.MIRROR_PRODUCTION_ENV, "true")
    root = tmp_path / "mlflow"
    root.mkdir()
    proc, url = start_mlflow_server(root)
    port = int(url.rsplit(":", 1)[1])
    try:
        client = registry.client_for(url)
        models, _ = small_models
        for i in range(2):
            run_id, _ = log_run(url, "business", models[i])
            record_gate(store, "business", run_id)
            registry.register(client, store, "business", run_id, actor=ME)
        registry.promote(client, store, "business", "1", actor=ME)
        rows_before = ledger(store, "business")

        def kill(step: str) -> None:
            if step == kill_after:
                stop_process(proc, signal.SIGKILL)

        with pytest.raises(Exception) as failure:
            registry.promote(client, store, "business", "2", actor=ME, reason="v2 is better", after_step=kill)
        assert not isinstance(failure.value, registry.RegistryError)
        assert proc.poll() is not None  # the server really died mid-promotion
        assert ledger(store, "business") == rows_before  # the ledger never records a move it did not see done

        proc, url = start_mlflow_server(root, port)  # same backend store
        client = registry.client_for(url)
        # the alias is a single server-side write: fully moved (the kill came after it), never half-set
        assert registry.alias_version(client, "business", "champion").version == "2"
        assert _stages(client)["2"] == ("Production" if kill_after == "production_mirrored" else "None")
        assert registry.previous_champion(client, store, "business") == "1"

        retry = registry.promote(client, store, "business", "2", actor=ME, reason="v2 is better")
        assert (retry["moved"], retry["recorded"], retry["previous_version"]) == (False, True, "1")
        assert registry.ledger_agrees(client, store, "business")
        assert _stages(client) == {"1": "Archived", "2": "Production"}
        assert [t.version for t in registry.alias_history(store, "business")] == ["1", "2"]
        # a second retry has nothing left to do
        n = len(ledger(store, "business"))
        registry.promote(client, store, "business", "2", actor=ME)
        assert len(ledger(store, "business")) == n
    finally:
        if proc.poll() is None:
            stop_process(proc)


class FailingLedgerStore:
    """The real store, except that the next `upsert_many` of an alias-move row into `model_decisions`
    raises once (a fault the real store cannot produce on demand)."""

    armed = True

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def upsert_many(self, collection, docs):
        docs = list(docs)
        if (collection == "model_decisions" and FailingLedgerStore.armed
                and any(d["kind"] in registry.ALIAS_KINDS for d in docs)):
            FailingLedgerStore.armed = False
            raise StoreUnavailable("injected: the document store went away")
        return self._real.upsert_many(collection, docs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()


class FailingLedgerStoreResource(DocumentStoreResource):
    def open(self):
        return FailingLedgerStore(super().open())


def _inputs(run_id: str, model_uri: str) -> tuple[dict, dict]:
    trained = {"mlflow_run_id": run_id, "model_uri": model_uri, "data_snapshot_hash": "snap-r6",
               "feature_schema_version": "x", "model_type": "random_forest"}
    report = {"gate": {"passed": True, "summary": "ok"}, "champion_comparison": None,
              "metrics": {"accuracy": 0.8, "macro_f1": 0.7, "confidence_mean": 0.6}}
    return trained, report


def test_registered_model_version_retry_after_a_failed_ledger_write_completes_it(
        clean_registry, hive_home, store, small_models, mlflow_server):
    client = clean_registry
    models, _ = small_models
    run_id, model_uri = log_run(mlflow_server, "business", models[0])
    trained, report = _inputs(run_id, model_uri)
    resources = {"mlflow": MlflowResource(tracking_uri=mlflow_server), "document_store": FailingLedgerStoreResource(),
                 "platform": PlatformSettings(), "run_lease": RUN_LEASE}

    def materialize():
        context = dg.build_asset_context(partition_key="business")
        return registered_model_version(context, config=RegisterConfig(), trained_model=trained,
                                        validation_report=report, **resources)

    FailingLedgerStore.armed = True
    with pytest.raises(StoreUnavailable):
        materialize()
    # the failure left the alias moved and its ledger row missing
    assert registry.alias_version(client, "business", "champion").version == "1"
    assert registry.last_alias_row(store, "business", "champion") is None
    assert not registry.ledger_agrees(client, store, "business")

    out = materialize().value  # the retry
    assert (out["version"], out["alias"], out["created"]) == ("1", "champion", False)
    assert registry.ledger_agrees(client, store, "business")
    kinds = sorted(r["kind"] for r in ledger(store, "business"))
    assert kinds == ["alias_move", "registration"]
    row = registry.last_alias_row(store, "business", "champion")
    assert (row["model_version"], row["details"]["previous_version"], row["data_snapshot_hash"]) == ("1", None,
                                                                                                     "snap-r6")
    materialize()  # and once more: nothing is written twice
    assert len(ledger(store, "business")) == 2


def test_ab_test_outcome_mirrors_the_split_when_the_test_record_already_exists(
        clean_registry, hive_home, store, small_models, mlflow_server):
    """The state a crash right after `open_test` leaves: the record exists, the registry knows nothing."""
    client = clean_registry
    models, _ = small_models
    for i in range(2):
        run_id, _ = log_run(mlflow_server, "business", models[i])
        record_gate(store, "business", run_id)
        registry.register(client, store, "business", run_id, actor=ME)
    registry.promote(client, store, "business", "1", actor=ME)
    registry.set_alias(client, store, "business", "challenger", "2", actor=ME)
    test, created = open_test(store, "business", "1", "2", 10.0, dagster_run_id="crashed-run")
    assert created
    result = dg.materialize([ab_test_outcome], partition_key="business", instance=dg.DagsterInstance.ephemeral(),
                            resources={"mlflow": MlflowResource(tracking_uri=mlflow_server),
                                       "document_store": DocumentStoreResource(), "platform": PlatformSettings()})
    out = result.output_for_node("ab_test_outcome")
    assert out["test_id"] == test["test_id"]
    tags = client.get_registered_model("business-evaluator").tags
    assert (tags["ab_test_id"], tags["ab_salt"], float(tags["ab_challenger_traffic_percent"]),
            tags["ab_challenger_version"]) == (test["test_id"], test["salt"], 10.0, "2")
    assert client.get_model_version_by_alias("business-evaluator", "ab-test-v2").version == "2"
    steps = [r for r in ledger(store, "business") if r["kind"] == "traffic_step"]
    assert len(steps) == 1 and steps[0]["details"]["test_id"] == test["test_id"]
