"""The whole asset graph for real partitions against a real `mlflow server` process."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from hive_assets import registry
from hive_assets.config import AUTO_CANDIDATES
from hive_assets.defs import build_defs
from hive_assets.defs.monitoring.sensors import last_training
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.features import FEATURE_NAMES, NUMERIC_FEATURES
from hive_assets.monitoring import REACHES_REGISTRY
from hive_assets.simulator import simulate
from hive_assets.data.store import SQLiteStore
from hive_assets_tests.conftest import served_registry

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """This module's own `mlflow server`: its tests count versions from v1 and expect the first registration
    to be champion (`served_registry`)."""
    yield from served_registry(tmp_path_factory.mktemp("mlflow-end-to-end"))


@pytest.fixture
def platform_env(hive_home, mlflow_server, monkeypatch, request):
    experiment = f"e2e-{request.node.name[:40]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    store = SQLiteStore(hive_home / "store.sqlite")
    now = datetime.now(timezone.utc)
    simulate(store, plans=2500, days=45, seed=21, now=now)
    resources = {
        "document_store": DocumentStoreResource(),
        "mlflow": MlflowResource(tracking_uri=mlflow_server, experiment_name=experiment),
        "platform": PlatformSettings(),
    }
    instance = dg.DagsterInstance.ephemeral()
    return store, resources, instance, registry.client_for(mlflow_server)


def _run(resources, instance, specialist, run_config=None):
    defs = build_defs()
    return dg.materialize(list(defs.assets), partition_key=specialist, resources=resources, instance=instance,
                          raise_on_error=False, run_config=run_config)


def _artifact_paths(client, run_id, path=None) -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out |= _artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def _check(result, name):
    evals = [e.asset_check_evaluation_data for e in result.all_events
             if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.asset_check_evaluation_data.check_name == name]
    assert len(evals) == 1
    return evals[0]


def test_one_partition_end_to_end_then_a_challenger(platform_env):
    store, resources, instance, client = platform_env
    result = _run(resources, instance, "business")
    assert result.success
    report = result.output_for_node("validation_report")
    assert report["gate"]["passed"], report["gate"]["summary"]
    assert report["metrics"]["accuracy"] >= 0.65 and report["n_test"] > 200
    lo, hi = report["intervals"]["macro_f1"]
    assert lo < report["metrics"]["macro_f1"] < hi
    reg = result.output_for_node("registered_model_version")
    assert (reg["version"], reg["alias"], reg["created"]) == ("1", "champion", True)

    # MLflow: one run for the partition, with params, metrics, schema, and a loadable model
    version = client.get_model_version_by_alias("business-evaluator", "champion")
    assert version.tags["dagster_partition"] == "business"
    assert version.tags["dagster_run_id"] == result.run_id
    assert version.tags["feature_schema_version"]
    snapshot = result.output_for_node("raw_production_data").snapshot_hash()
    assert len(snapshot) == 16 and version.tags["data_snapshot_hash"] == snapshot
    run = client.get_run(version.run_id)
    assert run.data.params["model_type"] == "auto"  # the default: the best candidate family on validation
    chosen = run.data.params["selected_model_type"]
    assert chosen in AUTO_CANDIDATES and version.tags["model_type"] == chosen
    scores = {k.split(".")[1]: float(v) for k, v in run.data.params.items() if k.startswith("candidate.")}
    assert set(scores) == set(AUTO_CANDIDATES) and scores[chosen] == max(scores.values())
    selection = json.loads(Path(client.download_artifacts(run.info.run_id, "model_selection.json")).read_text())
    assert selection["chosen"] == chosen
    assert [(c["model_type"], c["chosen"]) for c in selection["candidates"]] == [(m, m == chosen) for m in AUTO_CANDIDATES]
    assert {c["model_type"]: c["val_macro_f1"] for c in selection["candidates"]} == pytest.approx(scores, abs=1e-4)
    # whether each family's chosen fit converged: recorded (sklearn's ConvergenceWarning is not printed)
    assert all(isinstance(c["converged"], bool) for c in selection["candidates"])
    assert run.data.metrics["test_accuracy"] == pytest.approx(report["metrics"]["accuracy"])
    runs = client.search_runs([run.info.experiment_id], f"tags.`dagster.run_id` = '{result.run_id}'")
    assert len(runs) == 1
    # what issue 10 asks of every registered version's run
    assert run.info.status == "FINISHED"
    artifacts = _artifact_paths(client, run.info.run_id)
    assert {"plots/confusion_matrix.png", "plots/reliability_diagram.png", "plots/confusion_matrix_validation.png",
            "plots/reliability_diagram_validation.png", "drift_reference.json", "feature_schema.json",
            "validation_report.json"} <= artifacts
    for png in (p for p in artifacts if p.endswith(".png")):
        assert (Path(client.download_artifacts(run.info.run_id, png)).read_bytes()[:8]) == b"\x89PNG\r\n\x1a\n"
    reference = json.loads(Path(client.download_artifacts(run.info.run_id, "drift_reference.json")).read_text())
    assert set(reference["numeric"]) == set(NUMERIC_FEATURES) and len(reference["numeric"]["num_tasks"]["edges"]) >= 2
    assert sum(reference["predictions"]["proportions"]) == pytest.approx(1.0)
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == snapshot and dataset_input.dataset.name == "business-enhanced-features"
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"
    colspec = json.loads(dataset_input.dataset.schema)["mlflow_colspec"]  # dataset_schema's, logged
    assert [(c["name"], c["required"]) for c in colspec] == [(c, True) for c in (*FEATURE_NAMES, "label", "split")]
    assert {c["type"] for c in colspec[-2:]} == {"string"}
    import mlflow

    mlflow.set_tracking_uri(client.tracking_uri)
    info = mlflow.models.get_model_info(version.source)
    assert info.signature is not None and [c.name for c in info.signature.inputs.inputs] == list(FEATURE_NAMES)
    assert info.saved_input_example_info is not None
    assert run.data.metrics["test_ece"] == pytest.approx(report["calibration"]["ece"])
    assert report["calibration"]["passed"] and _check(result, "calibration").passed
    model = registry.load_version_model(client, version)
    features = result.output_for_node("enhanced_features")
    test = features[features["split"] == "test"]
    labels, confidence = model.predict_confidence(test)
    assert (labels == test["label"].to_numpy()).mean() == pytest.approx(report["metrics"]["accuracy"])
    assert np.all((confidence > 0) & (confidence <= 1))

    # the serving helper gives the same answer for one plan as the batch path
    from hive_assets.registry import load_evaluator

    evaluator = load_evaluator(client.tracking_uri, "business")
    raw = result.output_for_node("raw_production_data").frame
    plan = raw.loc[raw["opinion_id"] == test["opinion_id"].iloc[0], "plan"].iloc[0]
    one = evaluator.evaluate(plan)
    assert one.model_version == "1"
    assert (one.recommendation, one.confidence) == pytest.approx((labels[0], confidence[0]))
    assert sum(one.probabilities.values()) == pytest.approx(1.0)

    # registering the same MLflow run again returns the same version
    again, created = registry.register_version(client, "business", version.run_id, version.source, {})
    assert (again.version, created) == ("1", False)
    assert len(client.search_model_versions("name='business-evaluator'")) == 1

    # the ledger holds the verdict, the registration and the alias move
    kinds = sorted(d["kind"] for d in store.find("model_decisions", {"specialist_type": "business"}))
    assert kinds == ["alias_move", "gate_verdict", "registration"]
    assert result.output_for_node("ab_test_outcome")["status"] == "no_test"

    # a second run on the same data with another seed (the same data AND configuration would train nothing:
    # test_nothing_changed.py): the champion is re-scored on the same rows, the new version opens an A/B test
    second = _run(resources, instance, "business",
                  {"ops": {"trained_model": {"config": {"random_state": 1}}}})
    assert second.success
    report2 = second.output_for_node("validation_report")
    assert report2["champion"]["version"] == "1"
    assert report2["champion"]["metrics"]["accuracy"] == pytest.approx(report["metrics"]["accuracy"])
    # same data, another seed: nearly the same model
    assert abs(report2["champion_comparison"]["deltas"]["macro_f1"]) < 0.03
    assert report2["non_inferiority"]["passed"] and _check(second, "champion_non_inferiority").passed
    assert client.get_run(second.output_for_node("trained_model")["mlflow_run_id"]).info.status == "FINISHED"
    reg2 = second.output_for_node("registered_model_version")
    assert (reg2["version"], reg2["alias"]) == ("2", "challenger")
    outcome = second.output_for_node("ab_test_outcome")
    assert outcome["status"] == "running" and outcome["traffic_percent"] == 10.0
    test_doc = store.find_one("ab_tests", {"test_id": outcome["test_id"]})
    assert test_doc["challenger_version"] == "2" and test_doc["champion_version"] == "1"
    assert outcome["test_id"].startswith("business_v2_")
    tags = client.get_registered_model("business-evaluator").tags
    assert tags["ab_test_id"] == outcome["test_id"] and float(tags["ab_challenger_traffic_percent"]) == 10.0
    assert client.get_model_version_by_alias("business-evaluator", "champion").version == "1"
    assert client.get_model_version_by_alias("business-evaluator", "ab-test-v2").version == "2"


def test_a_registration_waits_for_an_operator_verb_and_its_retry_completes_it(platform_env, monkeypatch, request):
    """Registration writes aliases under the operator lease too (`run_lease.deciding`): while an operator
    verb holds it the step fails naming the holder, and its retry policy tries again, so a training is not
    lost to a verb of a few seconds. The verb (a lease held here) ends as the first attempt is refused: on a
    timer, a slow first attempt could find it ended already and test nothing."""
    from hive_assets import runs
    from hive_assets.defs.runs import lease as lease_module

    store, resources, instance, client = platform_env
    request.addfinalizer(lambda: client.delete_registered_model("evolution-evaluator"))  # the server is shared:
    # the gate test below expects no evolution model
    assert _run(resources, instance, "evolution").success  # v1, the champion
    monkeypatch.setenv("HIVE_LEASE_WAIT_SECONDS", "0")
    verb, _ = runs.try_acquire(store, runs.OPERATOR, "evolution", "an-operator-promotion", ttl_seconds=600)
    real_take = lease_module.take

    def take_while_the_verb_runs(*args, **kwargs):
        try:
            return real_take(*args, **kwargs)
        except runs.LeaseHeld:
            runs.release(store, verb, "the promotion ended")  # it ends while the step waits for its retry
            raise

    monkeypatch.setattr(lease_module, "take", take_while_the_verb_runs)
    again = dg.materialize(list(build_defs().assets), selection=["registered_model_version"], partition_key="evolution",
                           resources=resources, instance=instance, raise_on_error=False)
    assert again.success
    retried = [e for e in again.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retried) >= 1 and all(e.step_key == "registered_model_version" for e in retried)
    said = "\n".join(str(e.dagster_event.event_specific_data) for e in instance.all_logs(again.run_id)
                     if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_UP_FOR_RETRY")
    assert "another run of evolution holds it (run an-operator-promotion" in said, said[:2000]
    reg = again.output_for_node("registered_model_version")
    assert (reg["version"], reg["created"]) == ("1", False)  # the same MLflow run: the same version
    assert runs.held_leases(store, "evolution") == []


def test_failing_gate_blocks_registration_of_that_partition_only(platform_env):
    """The registry server is shared by the module's tests: these two specialists are used only here."""
    store, resources, instance, client = platform_env
    # shuffle the evolution labels: nothing is learnable there any more
    rng = np.random.default_rng(0)
    feedback = list(store.find("specialist_feedback", {"specialist_type": "evolution"}))
    labels = [f.get("human_recommendation") for f in feedback]
    rng.shuffle(labels)
    for fb, label in zip(feedback, labels):
        fb["human_recommendation"] = label
    store.upsert_many("specialist_feedback", feedback)

    bad = _run(resources, instance, "evolution")
    check = _check(bad, "minimum_metrics")
    assert not check.passed
    failed = {f["metric"] for f in check.metadata["failed_metrics"].value}
    assert "macro_f1" in failed and "accuracy" in failed
    assert "macro_f1 = " in check.description
    materialized = {e.asset_key.path[-1] for e in bad.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert "registered_model_version" not in materialized and "ab_test_outcome" not in materialized
    assert client.search_model_versions("name='evolution-evaluator'") == []
    # its training could have reached the registry (the gate judged its labels): it is the last training the
    # feedback count and the cooldown start from, as a registered one is
    [trained] = [e.event_specific_data.materialization for e in bad.all_events
                 if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.path[-1] == "trained_model"]
    assert trained.metadata[REACHES_REGISTRY].value is True
    # from the end of the data it was trained on (the collection's now), a moment before its training time
    data_until, trained_at = trained.metadata["data_until"].value, trained.metadata["trained_at"].value
    assert trained_at - 600 < data_until <= trained_at
    assert last_training(instance, "evolution")[0] == datetime.fromtimestamp(data_until, timezone.utc)
    verdict = store.find_one("model_decisions", {"specialist_type": "evolution", "kind": "gate_verdict"})
    assert verdict["details"]["passed"] is False

    good = _run(resources, instance, "architecture")
    assert good.success and _check(good, "minimum_metrics").passed
    assert good.output_for_node("registered_model_version")["alias"] == "champion"
    assert len(client.search_model_versions("name='architecture-evaluator'")) == 1


def test_a_failing_training_step_leaves_its_mlflow_run_failed(platform_env):
    """trained_model fails on data it cannot train on (no validation rows); its MLflow run, created before
    the failure and reused by the step's retries, ends FAILED, not RUNNING. Before it starts its own, the step
    ends the RUNNING MLflow runs of its specialist whose Dagster run ended (a run that failed while MLflow was
    down could not end its own), and leaves another specialist's and a live run's alone."""
    store, resources, instance, client = platform_env
    experiment_id = client.create_experiment(resources["mlflow"].experiment_name)
    job = build_defs().resolve_job_def("retrain_specialist")

    def left_running(specialist, status):
        dagster_run = instance.create_run_for_job(job, status=status, tags={"dagster/partition": specialist})
        return client.create_run(experiment_id, tags={"dagster.run_id": dagster_run.run_id,
                                                      "dagster.partition": specialist}).info.run_id

    interrupted = left_running("technical", dg.DagsterRunStatus.FAILURE)
    others = [left_running("business", dg.DagsterRunStatus.FAILURE),
              left_running("technical", dg.DagsterRunStatus.STARTED)]
    from hive_assets.defs.partitions import specialist_partitions
    from hive_assets.defs.training.assets import trained_model
    from hive_assets.simulator import make_plans, policy_label
    from hive_assets.features import features_frame

    @dg.asset(partitions_def=specialist_partitions, group_name="features")
    def enhanced_features():
        plans = make_plans(400, seed=3)
        frame = features_frame(plans)
        frame["label"] = [policy_label("technical", p) for p in plans]
        frame["plan_id"] = [p["plan_id"] for p in plans]
        frame["split"] = "train"  # nothing to calibrate or tune on
        return frame

    result = dg.materialize([enhanced_features, trained_model], partition_key="technical", resources=resources,
                            instance=instance, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and "0 validation rows" in failures[-1].step_failure_data.error.to_string()
    experiment = client.get_experiment_by_name(resources["mlflow"].experiment_name)
    runs = client.search_runs([experiment.experiment_id], f"tags.`dagster.run_id` = '{result.run_id}'")
    assert len(runs) == 1 and runs[0].info.status == "FAILED"
    ended = client.get_run(interrupted)
    assert ended.info.status == "FAILED"
    assert f"the training of run {result.run_id}" in ended.data.tags[registry.FAILURE_REASON_TAG]
    assert [client.get_run(r).info.status for r in others] == ["RUNNING", "RUNNING"]


def _failure(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert not result.success and failures
    return failures[-1].step_failure_data.error.message


def test_a_step_run_alone_refuses_outputs_that_do_not_belong_together(platform_env):
    """Each stored output is the partition's latest, whatever run wrote it: a step materialized alone must not
    validate another window's rows, register a model its stored report did not validate, or train on features
    whose blocking trainable check failed (the check stops only its own run)."""
    store, resources, instance, client = platform_env
    defs = build_defs()
    assets = list(defs.assets)

    def alone(*names, run_config=None):
        return dg.materialize(assets, selection=list(names), partition_key="behavior", resources=resources,
                              instance=instance, raise_on_error=False, run_config=run_config)

    assert _run(resources, instance, "behavior").success
    assert [v.version for v in client.search_model_versions("name='behavior-evaluator'")] == ["1"]

    # another model trained alone: its version would carry v1's report (gate passed, v1's metrics)
    other = alone("trained_model", run_config={"ops": {"trained_model": {"config": {"model_type": "logistic"}}}})
    assert other.success and other.output_for_node("trained_model")["model_type"] == "logistic"
    message = _failure(alone("registered_model_version"))
    assert "not registering a model nobody validated" in message
    assert other.output_for_node("trained_model")["mlflow_run_id"] in message
    assert [v.version for v in client.search_model_versions("name='behavior-evaluator'")] == ["1"]

    # features of another window, validated alone: the model's own training rows would count as test rows
    as_of = (datetime.now(timezone.utc) - timedelta(days=10)).isoformat()
    assert alone("raw_production_data", "enhanced_features", run_config={
        "ops": {"raw_production_data": {"config": {"as_of": as_of, "window_days": 40}}}}).success
    gates = store.count("model_decisions", {"specialist_type": "behavior", "kind": "gate_verdict"})
    message = _failure(alone("validation_report"))
    assert "are not the data trained_model" in message and "not validating" in message
    assert store.count("model_decisions", {"specialist_type": "behavior", "kind": "gate_verdict"}) == gates

    # features whose trainable check failed: stored, but never trained on by a later run
    short = alone("enhanced_features", run_config={
        "ops": {"enhanced_features": {"config": {"min_training_samples": 10**6}}}})
    assert not _check(short, "trainable").passed
    message = _failure(alone("trained_model"))
    assert "failed its trainable check" in message and "1000000" in message
