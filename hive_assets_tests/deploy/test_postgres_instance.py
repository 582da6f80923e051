"""deploy/dagster.yaml against a real PostgreSQL: runs, event logs and sensor ticks survive a restart.

The cluster is Debian's postgresql started by `scripts/services.sh up postgresql` in a private run
directory (loopback, trust auth); a missing package skips locally and fails under
HIVE_REQUIRE_SERVICES=1. The instance is built from deploy/dagster.yaml as shipped: only the DAGSTER_PG_*
variables it names are set.

The sensor is test-local (the platform's sensors come in a later issue): it reads the event log for the
latest `raw_production_data` materialization and requests one run when it finds a new one. It is
evaluated by a real `dagster-daemon run` process whose sensor, run-queue and monitoring daemons all use
that instance, so the tick, the cursor and the run it launches are stored in PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.scheduler.instigation import TickStatus

from hive_assets.defs import build_defs
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.simulator import simulate
from hive_assets.data import SQLiteStore
from hive_assets_tests.daemon import Daemon
from hive_assets_tests.services import SERVICES_SH, _read_env, _tail, require_service

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[2]
DEPLOY_INSTANCE = REPO / "deploy" / "dagster.yaml"
NOW = datetime(2026, 4, 1, tzinfo=timezone.utc)
DAEMON_WAIT_S = 150

SENSOR_LOCATION = textwrap.dedent('''
    """A test-local code location: one sensor driven by the event log, one trivial job."""
    import dagster as dg

    @dg.op
    def acknowledge(context):
        context.log.info("launched by feedback_probe")

    @dg.job
    def probe_job():
        acknowledge()

    @dg.sensor(job=probe_job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)
    def feedback_probe(context):
        """One run per new raw_production_data materialization; the cursor is its storage id."""
        records = context.instance.fetch_materializations(dg.AssetKey("raw_production_data"), limit=1).records
        if not records:
            return dg.SkipReason("no raw_production_data materialization yet")
        record = records[0]
        if context.cursor and int(context.cursor) >= record.storage_id:
            return dg.SkipReason(f"storage id {record.storage_id} already handled")
        context.update_cursor(str(record.storage_id))
        return dg.RunRequest(run_key=f"raw-{record.storage_id}",
                             tags={"dagster/partition": record.partition_key})

    defs = dg.Definitions(jobs=[probe_job], sensors=[feedback_probe])
''')


class PostgresCluster:
    """`services.sh up/down postgresql` in a private run directory, on a fixed port across restarts."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.env = {**os.environ, "HIVE_SERVICES_RUN_DIR": str(run_dir), "HIVE_SERVICES_WATCH_PID": str(os.getpid())}
        self.addr = ""

    def _services(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SERVICES_SH), *args], env=self.env, capture_output=True, text=True,
                              timeout=240, check=False)

    def up(self) -> str:
        out = self._services("up", "postgresql")
        if out.returncode != 0:
            self._services("down", "postgresql")
            require_service("PostgreSQL (Debian's postgresql package)", _tail(out.stderr))
        self.addr = _read_env(self.run_dir / "env")["HIVE_TEST_POSTGRES_ADDR"]
        # a restart must come back on the same port: the instance config names it
        self.env["HIVE_POSTGRES_PORT"] = self.addr.rsplit(":", 1)[1]
        return self.addr

    def down(self) -> None:
        out = self._services("down", "postgresql")
        assert out.returncode == 0, out.stderr

    def clean(self) -> None:
        self._services("clean")

    def pid(self) -> int:
        return int((self.run_dir / "postgresql.pid").read_text())


@pytest.fixture
def postgres(tmp_path_factory):
    if shutil.which("bash") is None:
        require_service("PostgreSQL", "bash not found")
    cluster = PostgresCluster(tmp_path_factory.mktemp("pg-services"))
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.clean()


@pytest.fixture
def deploy_instance_home(postgres, hive_home, monkeypatch) -> Path:
    """DAGSTER_HOME holding deploy/dagster.yaml unchanged, and the DAGSTER_PG_* it reads."""
    host, port = postgres.addr.rsplit(":", 1)
    for name, value in {"DAGSTER_PG_HOST": host, "DAGSTER_PG_PORT": port, "DAGSTER_PG_DB": "hive",
                        "DAGSTER_PG_USERNAME": "hive", "DAGSTER_PG_PASSWORD": "unused-trust-auth"}.items():
        monkeypatch.setenv(name, value)
    home = hive_home / "dagster"
    shutil.copy(DEPLOY_INSTANCE, home / "dagster.yaml")
    return home


ASSETS = ("raw_production_data", "enhanced_features", "trained_model", "validation_report",
          "registered_model_version", "ab_test_outcome")


def _materialize(instance: dg.DagsterInstance, specialist: str, selection: list[str] | None = None
                 ) -> dg.ExecuteInProcessResult:
    defs = build_defs()
    return dg.materialize(
        list(defs.assets), selection=selection or ["raw_production_data", "enhanced_features"], partition_key=specialist,
        instance=instance, raise_on_error=False,
        resources={"document_store": DocumentStoreResource(), "mlflow": MlflowResource(), "platform": PlatformSettings()},
        run_config={"ops": {"raw_production_data": {"config": {"as_of": NOW.isoformat(), "min_samples": 100}}}},
    )


def _sql(postgres: PostgresCluster, query: str) -> list[tuple]:
    """Read PostgreSQL directly (not through Dagster): what is really stored there."""
    import psycopg2

    host, port = postgres.addr.rsplit(":", 1)
    with psycopg2.connect(host=host, port=int(port), user="hive", dbname="hive") as conn, conn.cursor() as cur:
        cur.execute(query)
        rows = cur.fetchall()
    conn.close()
    return rows


def _run_daemon_until(home: Path, workdir: Path, done, what: str) -> None:
    """Start `dagster-daemon run` on the test location, wait until `done()` holds, then stop it."""
    (workdir / "probe_location.py").write_text(SENSOR_LOCATION)
    (workdir / "workspace.yaml").write_text(yaml.safe_dump(
        {"load_from": [{"python_file": {"relative_path": "probe_location.py", "location_name": "probe"}}]}))
    daemon = Daemon(home, workdir, {}, workspace=workdir / "workspace.yaml")
    try:
        daemon.wait_for(done, what, timeout=DAEMON_WAIT_S)
    finally:
        daemon.stop()


def test_deploy_instance_on_postgres_survives_a_restart(postgres, deploy_instance_home, hive_home, tmp_path):
    simulate(SQLiteStore(hive_home / "store.sqlite"), plans=2000, days=30, seed=5, now=NOW)
    instance = dg.DagsterInstance.from_config(str(deploy_instance_home))
    # the storage really is dagster-postgres, and the concurrency rule came through
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    queue = instance.get_concurrency_config().run_queue_config  # what the daemon's dequeuer applies
    assert queue.max_concurrent_runs == 12
    assert queue.tag_concurrency_limits == [
        {"key": "hive/retrain", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    assert instance.run_monitoring_enabled and instance.run_monitoring_max_runtime_seconds == 14400

    # 1. one partition materializes end to end on this instance: the whole graph, through registration
    first = _materialize(instance, "business", selection=list(ASSETS))
    assert first.success, [e.message for e in first.all_events if e.event_type_value == "STEP_FAILURE"]
    assert first.output_for_node("registered_model_version")["alias"] == "champion"
    for key in ASSETS:
        [record] = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=["business"]), limit=1).records
        assert record.run_id == first.run_id, key
    raw = first.output_for_node("raw_production_data")
    features = first.output_for_node("enhanced_features")
    assert raw.frame["specialist_type"].eq("business").all() and len(features) > 100
    assert set(features["split"]) == {"train", "validation", "test"}

    # 2. a sensor tick, evaluated by the daemon, finds that materialization and launches a run
    def probe_run_succeeded() -> bool:
        failed = [t for s in instance.all_instigator_state() for t in instance.get_ticks(s.instigator_origin_id, s.selector_id)
                  if t.status == TickStatus.FAILURE]
        assert not failed, failed[0].error
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/sensor_name": "feedback_probe"}))
        return bool(runs) and runs[0].status == dg.DagsterRunStatus.SUCCESS

    _run_daemon_until(deploy_instance_home, tmp_path, probe_run_succeeded, "the sensor's run succeeding")
    [probe_run] = instance.get_runs(dg.RunsFilter(tags={"dagster/sensor_name": "feedback_probe"}))
    assert probe_run.tags["dagster/partition"] == "business"
    [state] = [s for s in instance.all_instigator_state() if s.instigator_name == "feedback_probe"]
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
    launched = [t for t in ticks if t.status == TickStatus.SUCCESS]
    assert [t.run_ids for t in launched] == [[probe_run.run_id]]
    [raw_event] = instance.fetch_materializations(dg.AssetKey("raw_production_data"), limit=1).records
    assert state.instigator_data.cursor == str(raw_event.storage_id)

    # what PostgreSQL itself holds, read without Dagster
    stored_runs = dict(_sql(postgres, "SELECT run_id, status FROM runs"))
    assert stored_runs == {first.run_id: "SUCCESS", probe_run.run_id: "SUCCESS"}
    assert all(c in "0123456789abcdef" for c in state.selector_id)  # safe to inline below
    assert _sql(postgres, f"SELECT count(*) FROM job_ticks WHERE selector_id = '{state.selector_id}'")[0][0] == len(ticks)
    pg_pid = postgres.pid()

    # 3. PostgreSQL restarts between the two runs; the same instance object carries on
    postgres.down()
    postgres.up()
    assert postgres.pid() != pg_pid
    second = _materialize(instance, "technical")
    assert second.success
    assert second.output_for_node("raw_production_data").frame["specialist_type"].eq("technical").all()

    # the history from before the restart is intact, seen by a freshly loaded instance too
    reloaded = dg.DagsterInstance.from_config(str(deploy_instance_home))
    assert {r.run_id for r in reloaded.get_runs()} == {first.run_id, probe_run.run_id, second.run_id}
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in reloaded.get_runs())
    materialized = reloaded.get_materialized_partitions(dg.AssetKey("enhanced_features"))
    assert materialized == {"business", "technical"}
    assert len(reloaded.get_ticks(state.instigator_origin_id, state.selector_id)) == len(ticks)
    [state_after] = [s for s in reloaded.all_instigator_state() if s.instigator_name == "feedback_probe"]
    assert state_after.instigator_data.cursor == str(raw_event.storage_id)
    assert [e.message for e in reloaded.all_logs(probe_run.run_id) if "launched by feedback_probe" in (e.message or "")]
