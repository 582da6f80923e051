"""Two runs of the same partition launched at once, each in its own process, against one instance, store
and `mlflow server`: through the `dagster` CLI (in-process execution, which bypasses the run queue's
per-partition limit), through the daemon's path in-process (two sensor-style requests executed as runs),
and through a real `dagster-daemon` (its run queue and run launcher, with the repository's dagster.yaml).
Every registration names its own runs (the ledger row's Dagster run id is the one its MLflow run was
trained by) and no trained model is lost (every MLflow training run became a version)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from hive_assets import registry
from hive_assets.config import SPECIALISTS
from hive_assets.data import SQLiteStore
from hive_assets.simulator import simulate
from hive_assets_tests.daemon import REPO, Daemon

pytestmark = pytest.mark.services
CONFIG = {"ops": {"raw_production_data": {"config": {"min_samples": 10}},
                  "enhanced_features": {"config": {"min_training_samples": 100}}}}

SENSOR_STYLE_RUN = textwrap.dedent("""
    import json, sys
    import dagster as dg
    from hive_assets import clock
    from hive_assets.definitions import defs
    from hive_assets.defs.simulator.daemon import InProcessDaemon

    key, reason, sensor = sys.argv[1:4]
    request = dg.RunRequest(run_key=key, partition_key="business", run_config=json.loads(sys.argv[4]),
                            tags={"hive/trigger_id": key, "hive/trigger_reason": reason})
    InProcessDaemon(dg.DagsterInstance.get(), defs).launch(clock.now(), "retrain_specialist", request, sensor=sensor)
""")


@pytest.fixture(scope="module")
def production_store(tmp_path_factory) -> Path:
    """1,500 simulated plans (enough for the business specialist's gate), simulated once for the module."""
    path = tmp_path_factory.mktemp("one-writer") / "store.sqlite"
    with SQLiteStore(path) as store:
        simulate(store, plans=1500, days=30, seed=21, now=datetime.now(timezone.utc), label_noise=0.0,
                 malformed_rate=0.0)
    return path


@pytest.fixture
def world(hive_home, production_store, mlflow_server, monkeypatch, request):
    experiment = f"one-writer-{uuid.uuid4().hex[:8]}"  # a fresh experiment: only this test's runs
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    monkeypatch.setenv("HIVE_LEASE_WAIT_SECONDS", "0")  # the second run fails at once rather than queue
    shutil.copy(production_store, hive_home / "store.sqlite")
    # the instance exists before the two processes start (two processes creating one SQLite instance at once
    # race on its schema version; `hive env` or a deployment creates it once)
    dg.DagsterInstance.get().get_runs(limit=1)
    client = registry.client_for(mlflow_server)
    if client.search_registered_models("name='business-evaluator'"):
        client.delete_registered_model("business-evaluator")
    yield client, experiment


def _all(commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
             for c in commands]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=900)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def _check_every_registration_names_its_own_runs(client, experiment: str, hive_home: Path,
                                                 runs: int = 2) -> list[dg.DagsterRun]:
    instance = dg.DagsterInstance.get()
    dagster_runs = [r.dagster_run for r in instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": "business"}))]
    assert len(dagster_runs) == runs
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    trained = client.search_runs([experiment_id], filter_string="tags.`dagster.partition` = 'business'")
    versions = client.search_model_versions("name='business-evaluator'")
    # no model lost: every training run of the partition is a version, registered by the run that trained it
    assert trained and {v.run_id for v in versions} == {r.info.run_id for r in trained}
    for version in versions:
        assert version.tags["dagster_run_id"] == client.get_run(version.run_id).data.tags["dagster.run_id"]
    with SQLiteStore(hive_home / "store.sqlite") as store:
        rows = list(store.find("model_decisions", {"specialist_type": "business", "kind": "registration"}))
        skipped = list(store.find("model_decisions", {"specialist_type": "business",
                                                      "kind": registry.SKIPPED_UNCHANGED}))
    assert len(rows) == len(versions)
    for row in rows:  # the ledger row's Dagster run trained the MLflow run it names
        assert client.get_run(row["details"]["mlflow_run_id"]).data.tags["dagster.run_id"] == row["dagster_run_id"]
    # every run that succeeded registered its own model, or trained nothing because nothing had changed
    succeeded = [r for r in dagster_runs if r.status == dg.DagsterRunStatus.SUCCESS]
    assert rows and {r.run_id for r in succeeded} == {row["dagster_run_id"] for row in rows + skipped}
    # the same data is never trained twice (a run that waits for the writer sees its version: nothing changed)
    snapshots = [v.tags.get("data_snapshot_hash") for v in versions]
    assert len(set(snapshots)) == len(snapshots), snapshots
    # one writer at a time: the spans of the runs' writes to the partition (first to last materialization,
    # from the instance's event log) never overlap
    spans = sorted(span for r in dagster_runs if (span := _write_span(instance, r.run_id)))
    assert all(earlier[1] < later[0] for earlier, later in zip(spans, spans[1:])), spans
    return dagster_runs


def _write_span(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float] | None:
    """(first, last) timestamp of the run's asset materializations, or None when it wrote nothing."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    times = [r.event_log_entry.timestamp for r in records]
    return (min(times), max(times)) if times else None


def test_two_cli_runs_of_one_partition_at_once(world, hive_home):
    client, experiment = world
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "asset", "materialize", "-m", "hive_assets.definitions", "--select", "*",
               "--partition", "business", "--config-json", json.dumps(CONFIG)]
    results = _all([command, command])
    dagster_runs = _check_every_registration_names_its_own_runs(client, experiment, hive_home)
    losers = [r for r in results if r.returncode != 0]
    for loser in losers:  # the one that did not get the lease says who holds it
        assert "another run of business holds it (run " in loser.stderr, loser.stderr[-3000:]
    assert len(losers) == sum(r.status != dg.DagsterRunStatus.SUCCESS for r in dagster_runs)


def test_two_sensor_style_runs_of_one_partition_at_once(world, hive_home):
    client, experiment = world
    config = json.dumps(CONFIG)
    results = _all([
        [sys.executable, "-c", SENSOR_STYLE_RUN, "feedback:business:test", "feedback", "feedback_retraining_sensor",
         config],
        [sys.executable, "-c", SENSOR_STYLE_RUN, "drift:business:test", "drift", "drift_retraining_sensor", config],
    ])
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    dagster_runs = _check_every_registration_names_its_own_runs(client, experiment, hive_home)
    for run in dagster_runs:
        if run.status != dg.DagsterRunStatus.SUCCESS:
            failure = dg.DagsterInstance.get().all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            text = " ".join(str(e) for e in dg.DagsterInstance.get().all_logs(run.run_id))  # messages and errors
            assert failure and "another run of business holds it (run " in text


IN_PROGRESS = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)


def test_two_runs_of_one_partition_launched_through_the_real_daemon(world, hive_home, tmp_path):
    """Three runs of business submitted to the instance's run queue, then a real `dagster-daemon` with the
    repository's dagster.yaml dequeues and launches them (each run in its own process):

    * two carry `hive/retrain=business` (as the sensors' and the Launchpad's runs do): the queue's
      one-training-per-specialist limit holds the second QUEUED while the first is in progress;
    * one is a `dagster job launch --tags '{"dagster/partition": "business"}'`, which carries no
      `hive/retrain` tag: the queue lets it start beside the first, and only the training lease keeps the
      two from writing the partition at once."""
    client, experiment = world
    home = hive_home / "dagster"
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")  # the real run queue and its limits
    instance = dg.DagsterInstance.get()
    for s in SPECIALISTS:  # every specialist trained just now: the feedback sensor has nothing to count
        instance.report_runless_asset_event(dg.AssetMaterialization("trained_model", partition=s))
    dagster = str(Path(sys.executable).with_name("dagster"))

    def launch(name: str, **tags: str) -> list[str]:
        return [dagster, "job", "launch", "-w", str(REPO / "workspace.yaml"), "-j", "retrain_specialist",
                "--config-json", json.dumps(CONFIG),
                "--tags", json.dumps({"dagster/partition": "business", "test/launch": name, **tags})]

    # queued before the daemon starts, so its first dequeue sees all three at once
    submitted = _all([launch("a", **{"hive/retrain": "business"}), launch("b", **{"hive/retrain": "business"}),
                      launch("untagged")])
    assert all(r.returncode == 0 for r in submitted), [r.stderr[-2000:] for r in submitted]
    queued = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": "business"}))
    assert [r.status for r in queued] == [dg.DagsterRunStatus.QUEUED] * 3

    seen = {"held in the queue": False, "started together": False}

    def all_ended():
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": "business"}))
        tagged = [r for r in runs if "hive/retrain" in r.tags]
        untagged = [r for r in runs if "hive/retrain" not in r.tags]
        if any(r.status in IN_PROGRESS for r in tagged):
            seen["held in the queue"] |= any(r.status == dg.DagsterRunStatus.QUEUED for r in tagged)
            seen["started together"] |= any(r.status in IN_PROGRESS for r in untagged)
        return all(r.is_finished for r in runs)

    daemon = Daemon(home, tmp_path, {"PYTHONPATH": str(REPO)})
    started = time.monotonic()
    try:
        daemon.wait_for(all_ended, "the three runs ending", timeout=900, poll_s=0.25)
    finally:
        daemon.stop()
    print(f"the three runs ended {time.monotonic() - started:.0f} s after the daemon started")
    assert seen["held in the queue"], "the run queue's hive/retrain limit never held a second training run"
    assert seen["started together"], "the untagged run never ran beside a tagged one: the lease was not tested"
    dagster_runs = _check_every_registration_names_its_own_runs(client, experiment, hive_home, runs=3)
    for run in dagster_runs:  # a run that did not get the lease failed at start, naming the holder
        if run.status != dg.DagsterRunStatus.SUCCESS:
            text = " ".join(str(e) for e in instance.all_logs(run.run_id))
            holders = {r.run_id for r in dagster_runs} - {run.run_id}
            assert any(f"another run of business holds it (run {h}" in text for h in holders), text[-3000:]
