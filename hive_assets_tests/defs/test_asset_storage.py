"""The `io_manager` with the embedded defaults: outputs are open files under `$HIVE_HOME/assets`, and a fresh
DAGSTER_HOME over the same HIVE_HOME (a new instance, nothing in `$DAGSTER_HOME/storage`) reads them.

The Parquet file is compared with the asset's value computed in a separate run that keeps outputs in
memory (Dagster's `mem_io_manager`), read back with pandas alone.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from hive_assets.cli import main as hive
from hive_assets.cli._dagster import failure_message
from hive_assets.data import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.simulator import simulate

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
SPECIALIST = "business"


@pytest.fixture
def local_home(hive_home, monkeypatch):
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())  # collection and training read the platform clock
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "asset-storage")
    simulate(SQLiteStore(hive_home / "store.sqlite"), plans=2500, days=45, seed=21, now=NOW, specialists=(SPECIALIST,))
    return hive_home


def _materialization(instance: dg.DagsterInstance, asset: str) -> dict:
    [record] = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_outputs_are_open_files_that_a_fresh_dagster_home_reads(local_home, tmp_path, monkeypatch):
    defs = build_defs()
    first = dg.DagsterInstance.get()
    result = dg.materialize(list(defs.assets), partition_key=SPECIALIST, resources=defs.resources, instance=first,
                            raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    assets = local_home / "assets"
    assert {p.relative_to(assets).as_posix() for p in assets.rglob("*") if p.is_file()} == {
        "raw_production_data/business/rows.parquet", "raw_production_data/business/quarantine.parquet",
        "raw_production_data/business/summary.json", "enhanced_features/business.parquet",
        "trained_model/business.json", "validation_report/business.json",
        "registered_model_version/business.json", "ab_test_outcome/business.json"}
    # nothing pickled on the instance's disk (Dagster's default IO manager writes storage/<asset>/<partition>)
    assert not [p for p in (local_home / "dagster").rglob(SPECIALIST)]
    assert _materialization(first, "enhanced_features")["path"] == str(assets / "enhanced_features" / "business.parquet")

    # the Parquet file, read with pandas alone, is the asset's value (computed again without this IO manager)
    in_memory = dg.materialize(list(defs.assets), selection=["raw_production_data", "enhanced_features"],
                               partition_key=SPECIALIST, resources={**defs.resources, "io_manager": dg.mem_io_manager},
                               instance=dg.DagsterInstance.ephemeral())
    value = in_memory.output_for_node("enhanced_features")
    stored = pd.read_parquet(assets / "enhanced_features" / "business.parquet")
    pd.testing.assert_frame_equal(stored, value)
    assert stored.attrs == value.attrs and stored.attrs["data_snapshot_hash"]
    trained = json.loads((assets / "trained_model" / "business.json").read_text())
    assert trained["mlflow_run_id"] == _materialization(first, "trained_model")["mlflow_run_id"]
    assert trained["model_uri"].startswith("models:/")  # the model itself stays in MLflow

    # a new instance (a new pod's DAGSTER_HOME) over the same HIVE_HOME: validation_report alone
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "fresh-dagster"))
    (tmp_path / "fresh-dagster").mkdir()
    fresh = dg.DagsterInstance.get()
    again = dg.materialize(list(defs.assets), selection=["validation_report"], partition_key=SPECIALIST,
                           resources=defs.resources, instance=fresh, raise_on_error=False)
    assert again.success, [e.message for e in again.all_events if e.is_failure]
    loaded = {e.event_specific_data.input_name for e in again.all_events if e.event_type_value == "LOADED_INPUT"}
    assert loaded == {"enhanced_features", "trained_model"}
    report = json.loads((assets / "validation_report" / "business.json").read_text())
    assert report["mlflow_run_id"] == trained["mlflow_run_id"]
    assert report["data_snapshot_hash"] == stored.attrs["data_snapshot_hash"]

    # the report: `hive validate` in its own run of the first instance
    monkeypatch.setenv("DAGSTER_HOME", str(local_home / "dagster"))
    assert hive(["validate", "--specialist", SPECIALIST]) == 0


def test_a_step_whose_upstream_was_never_stored_says_what_to_materialize(hive_home):
    defs = build_defs()
    result = dg.materialize(list(defs.assets), selection=["validation_report"], partition_key=SPECIALIST,
                            resources=defs.resources, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failures[-1].step_failure_data.error.to_string()
    assert not result.success
    assert re.search(r"no stored output of (enhanced_features|trained_model) for partition business at \S+: "
                     r"materialize (enhanced_features|trained_model) first", message), message


def test_a_local_write_that_fails_part_way_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    from upath import UPath

    from hive_assets.defs.storage import _Files

    files = _Files(UPath(str(tmp_path / "out")), directory=True)
    files.write(b"previous output", "summary.json")
    real = Path.write_bytes

    def disk_full(self, data):  # the fault a real disk gives only when full: half the bytes, then ENOSPC
        real(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(OSError, match="No space left"):
        files.write(b"the new output, longer than the previous one", "summary.json")
    monkeypatch.undo()
    assert files.read("summary.json") == b"previous output"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["summary.json"]  # no partial file left behind
    files.write(b"the new output", "summary.json")
    assert files.read("summary.json") == b"the new output"


def test_a_missing_bucket_is_named_and_never_created(local_home, s3_endpoint, monkeypatch):
    """A typo in HIVE_ASSET_STORAGE's bucket: the first write's mkdir created it (on AWS: a new bucket without
    the real one's encryption, lifecycle or versioning) and the retraining ran into it; a read said to
    materialize the upstream asset first, into that same typo."""
    import s3fs

    bucket = f"hive-typo-{uuid.uuid4().hex[:8]}"
    for name, value in {"AWS_ENDPOINT_URL_S3": s3_endpoint, "AWS_ACCESS_KEY_ID": "hive-test",
                        "AWS_SECRET_ACCESS_KEY": "hive-test", "AWS_DEFAULT_REGION": "us-east-1",
                        "HIVE_ASSET_STORAGE": f"s3://{bucket}/hive"}.items():
        monkeypatch.setenv(name, value)
    defs = build_defs()
    with dg.instance_for_test() as instance:
        for selection in (["raw_production_data"], ["validation_report"]):  # a write, then a read
            result = dg.materialize(list(defs.assets), selection=selection, partition_key=SPECIALIST,
                                    resources=defs.resources, instance=instance, raise_on_error=False)
            assert not result.success
            assert f"the bucket s3://{bucket} does not exist: check HIVE_ASSET_STORAGE" in failure_message(result)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
    assert not fs.exists(bucket)


def test_production_refuses_a_local_base_and_a_local_dagster_instance(monkeypatch, tmp_path):
    """HIVE_ENV=production refused local asset storage in HIVE_ASSET_STORAGE, but the io_manager's `base` (one
    field of a run's config in the Launchpad) wrote to the pod's disk, and a `dagster` CLI on a pod's own
    SQLite instance (or none: an ephemeral one) ran the assets where the deployment never sees the runs."""
    from hive_assets.config import ConfigError
    from hive_assets.defs.storage import AssetStorage

    for name, value in {"HIVE_ENV": "production", "MONGODB_URI": "mongodb://db.internal:27017",
                        "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000",
                        "HIVE_ASSET_STORAGE": "s3://hive-outputs/hive"}.items():
        monkeypatch.setenv(name, value)

    def io_manager(base: str = "", instance=None):
        return AssetStorage(base=base).create_io_manager(dg.build_init_resource_context(instance=instance))

    # (a deployment's PostgreSQL instance passes: deploy/test_lost_pod.py runs the assets on one)
    with pytest.raises(ConfigError, match=r"refuses the io_manager's base must be an s3:// or gs:// URL, got "
                                          r"'/data/outputs'; an ephemeral Dagster instance .*; nothing was written"):
        io_manager("/data/outputs", dg.DagsterInstance.ephemeral())
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        with pytest.raises(ConfigError, match=r"refuses a Dagster instance that keeps runs on this disk "
                                              r"\(SqliteEventLogStorage, SqliteRunStorage, DAGSTER_HOME="):
            io_manager(instance=instance)
    assert not Path("/data/outputs").exists()
