"""A lost run pod loses nothing: production mode on real services, every "pod" a fresh DAGSTER_HOME and an
empty local disk sharing only the PostgreSQL instance storage (deploy/dagster.yaml as shipped), the S3
bucket (SeaweedFS), the document store (FerretDB) and the MLflow server.

1. pod A materializes the whole graph of one partition;
2. pod B, another process, materializes `validation_report` alone: it loads `enhanced_features` and
   `trained_model` from the bucket (Dagster's default IO manager would look in B's own `$DAGSTER_HOME/storage`
   and fail with DagsterExecutionLoadInputError);
3. a run of `retrain_specialist` in pod C is SIGKILLed once `enhanced_features` is done; marked failed (what
   run monitoring does for a run whose pod is gone), it is re-executed from failure in pod D and completes
   without collecting again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from hive_assets.data.store.mongo import MongoStore
from hive_assets.defs import build_defs
from hive_assets.simulator import simulate
from hive_assets_tests.deploy.test_postgres_instance import DEPLOY_INSTANCE, PostgresCluster

pytestmark = pytest.mark.services

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
SPECIALIST = "business"
SECRET = "hive-test-secret-key-7f3a"  # must never appear in Dagster's events or metadata
KILL_WAIT_S = 300


def retrain_specialist() -> dg.JobDefinition:
    """The code location's job, for `dg.reconstructable` (module level: the killed process imports it)."""
    return build_defs().resolve_job_def("retrain_specialist")


class Pod:
    """A fresh DAGSTER_HOME (deploy/dagster.yaml) and an empty HIVE_HOME and working directory."""

    def __init__(self, root: Path):
        self.root = root
        self.dagster_home = root / "dagster"
        self.hive_home = root / "hive"
        self.cwd = root / "cwd"
        for d in (self.dagster_home, self.hive_home, self.cwd):
            d.mkdir(parents=True)
        shutil.copy(DEPLOY_INSTANCE, self.dagster_home / "dagster.yaml")

    def env(self) -> dict[str, str]:
        return {**os.environ, "DAGSTER_HOME": str(self.dagster_home), "HIVE_HOME": str(self.hive_home)}

    def enter(self, monkeypatch) -> dg.DagsterInstance:
        monkeypatch.setenv("DAGSTER_HOME", str(self.dagster_home))
        monkeypatch.setenv("HIVE_HOME", str(self.hive_home))
        monkeypatch.chdir(self.cwd)
        return dg.DagsterInstance.get()

    def local_files(self) -> list[str]:
        """What this pod left on its own disk besides the instance settings and the steps' compute logs (where
        those go is the instance's configuration, not the code location's): must be nothing."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*")
                      if p.is_file() and p != self.dagster_home / "dagster.yaml" and "compute_logs" not in p.parts)


@pytest.fixture
def production(hive_home, ferretdb_uri, own_mlflow_server, s3_endpoint, tmp_path_factory, monkeypatch):
    """HIVE_ENV=production on the real services, one partition's history in a private FerretDB database and a
    registry of its own: on the worker's shared one, a file before it in the same worker had registered this
    history's champion, and pod A's run rightly ended "nothing changed since v1"."""
    import s3fs

    postgres = PostgresCluster(tmp_path_factory.mktemp("pg-services"))
    host, port = postgres.up().rsplit(":", 1)
    token = uuid.uuid4().hex[:8]
    bucket = f"hive-lost-pod-{token}"
    env = {
        "HIVE_ENV": "production", "MONGODB_URI": ferretdb_uri, "MONGODB_DATABASE": f"lost_pod_{token}",
        "MLFLOW_TRACKING_URI": own_mlflow_server, "MLFLOW_EXPERIMENT_NAME": f"lost-pod-{token}",
        "HIVE_ASSET_STORAGE": f"s3://{bucket}/hive",
        "AWS_ENDPOINT_URL_S3": s3_endpoint, "AWS_ACCESS_KEY_ID": "hive-test", "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "HIVE_SIMULATED_NOW": NOW.isoformat(),
        "DAGSTER_PG_HOST": host, "DAGSTER_PG_PORT": port, "DAGSTER_PG_DB": "hive", "DAGSTER_PG_USERNAME": "hive",
        "DAGSTER_PG_PASSWORD": "unused-trust-auth",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
    fs.mkdir(bucket)
    with MongoStore(ferretdb_uri, env["MONGODB_DATABASE"]) as store:
        simulate(store, plans=2500, days=45, seed=21, now=NOW, specialists=(SPECIALIST,))
    try:
        yield fs, bucket
    finally:
        with MongoStore(ferretdb_uri, env["MONGODB_DATABASE"]) as store:
            store.client.drop_database(env["MONGODB_DATABASE"])
        fs.rm(bucket, recursive=True)
        postgres.clean()


def _steps(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> set[str]:
    return {e.step_key for e in instance.all_logs(run_id, of_type=event_type)}


def _materializations(instance: dg.DagsterInstance, asset: str) -> list:
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[SPECIALIST]), limit=100).records


def test_a_lost_pod_loses_nothing(production, tmp_path, monkeypatch):
    fs, bucket = production

    # 1. pod A: the whole graph of one partition
    pod_a = Pod(tmp_path / "pod-a")
    instance = pod_a.enter(monkeypatch)
    defs = build_defs()
    first = dg.materialize(list(defs.assets), partition_key=SPECIALIST, resources=defs.resources, instance=instance,
                           raise_on_error=False)
    assert first.success, [e.message for e in first.all_events if e.is_failure]
    stored = {p.removeprefix(f"{bucket}/hive/") for p in fs.find(f"{bucket}/hive")}
    assert stored == {"raw_production_data/business/rows.parquet", "raw_production_data/business/quarantine.parquet",
                      "raw_production_data/business/summary.json", "enhanced_features/business.parquet",
                      "trained_model/business.json", "validation_report/business.json",
                      "registered_model_version/business.json", "ab_test_outcome/business.json"}
    [features] = _materializations(instance, "enhanced_features")
    assert features.asset_materialization.metadata["path"].value == f"s3://{bucket}/hive/enhanced_features/business.parquet"
    assert pod_a.local_files() == []  # no store.sqlite, no mlflow.db, no assets, no pickles

    # 2. pod B, a new process: validation_report alone
    pod_b = Pod(tmp_path / "pod-b")
    out = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "hive_assets.definitions",
         "--select", "validation_report", "--partition", SPECIALIST],
        cwd=pod_b.cwd, env=pod_b.env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "DagsterExecutionLoadInputError" not in out.stderr
    [report, _] = _materializations(instance, "validation_report")
    assert report.run_id != first.run_id
    assert _steps(instance, report.run_id, dg.DagsterEventType.LOADED_INPUT) == {"validation_report"}
    assert pod_b.local_files() == []

    # 3. pod C: a retraining run SIGKILLed once enhanced_features is done
    pod_c = Pod(tmp_path / "pod-c")
    known = {r.run_id for r in instance.get_runs()}
    script = ("import dagster as dg\n"
              "from hive_assets_tests.deploy.test_lost_pod import retrain_specialist\n"
              "dg.execute_job(dg.reconstructable(retrain_specialist), dg.DagsterInstance.get(),\n"
              f"               tags={{'dagster/partition': {SPECIALIST!r}}},\n"
              # another seed than pod A's: the same data and configuration would train nothing ("nothing changed")
              "               run_config={'ops': {'trained_model': {'config': {'random_state': 1}}}})\n")
    log = (tmp_path / "pod-c.log").open("w")
    killed = subprocess.Popen([sys.executable, "-c", script], cwd=pod_c.cwd,
                              env={**pod_c.env(), "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + KILL_WAIT_S
        run_id = None
        while True:
            assert killed.poll() is None, (tmp_path / "pod-c.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "trained_model never started"
            run_id = run_id or next((r.run_id for r in instance.get_runs() if r.run_id not in known), None)
            if run_id and "trained_model" in _steps(instance, run_id, dg.DagsterEventType.STEP_START):
                break
            time.sleep(0.2)
        os.killpg(killed.pid, signal.SIGKILL)
    finally:
        if killed.poll() is None:
            os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
        log.close()
    run = instance.get_run_by_id(run_id)
    assert run.status == dg.DagsterRunStatus.STARTED  # nobody told the instance: the process just vanished
    assert _steps(instance, run_id, dg.DagsterEventType.STEP_SUCCESS) == {"raw_production_data", "enhanced_features"}
    collections = len(_materializations(instance, "raw_production_data"))
    assert collections == 2
    # what run monitoring records once the run's pod is gone
    instance.report_run_failed(run)

    # 4. pod D: re-executed from failure in a fresh DAGSTER_HOME on an empty disk
    pod_d = Pod(tmp_path / "pod-d")
    fresh = pod_d.enter(monkeypatch)
    # the partition tag as the UI's "re-execute from failure" passes it on (execute_job does not inherit it)
    result = dg.execute_job(dg.reconstructable(retrain_specialist), fresh, tags={"dagster/partition": SPECIALIST},
                            reexecution_options=dg.ReexecutionOptions.from_failure(run_id, fresh))
    assert result.success, [e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure]
    assert result.dagster_run.parent_run_id == run_id
    assert _steps(fresh, result.run_id, dg.DagsterEventType.STEP_START) == {
        "trained_model", "validation_report", "registered_model_version", "ab_test_outcome"}
    assert len(_materializations(fresh, "raw_production_data")) == collections  # no collection again
    assert pod_c.local_files() == [] and pod_d.local_files() == []

    # no credential in anything Dagster stored
    for r in fresh.get_runs():
        assert not [e for e in fresh.all_logs(r.run_id) if SECRET in repr(e)], r.run_id
