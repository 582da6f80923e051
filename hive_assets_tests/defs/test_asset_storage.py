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


def _materialize(defs: dg.Definitions, instance: dg.DagsterInstance, *selection: str):
    """The partition's `selection` materialized with the definitions' resources; a failure is returned."""
    return dg.materialize(list(defs.assets), selection=list(selection), partition_key=SPECIALIST,
                          resources=defs.resources, instance=instance, raise_on_error=False)


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
    # with the deployment's run retries (max_retries 1): a refusal at setup is not started again in a new pod
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 1}}) as instance:
        for selection in (["raw_production_data"], ["validation_report"]):  # a write, then a read
            result = _materialize(defs, instance, *selection)
            assert not result.success
            assert f"the bucket s3://{bucket} does not exist: check HIVE_ASSET_STORAGE" in failure_message(result)
            assert instance.get_run_by_id(result.run_id).tags["dagster/will_retry"] == "false"
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


# A second S3 gateway over the session's SeaweedFS data that checks credentials (the session's is anonymous): an
# administrator, and a writer whose policy allows reading and writing under `<bucket>/hive/` but not listing it
ADMIN_KEY, ADMIN_SECRET = "hive-admin", f"admin-secret-{uuid.uuid4().hex}"
WRITER_KEY, WRITER_SECRET = "hive-writer", f"writer-secret-{uuid.uuid4().hex}"
WRITABLE_BUCKET = f"hive-write-only-{uuid.uuid4().hex[:8]}"
GATEWAY_READY_S = 30


@pytest.fixture(scope="module")
def authenticating_s3(seaweedfs_filer, tmp_path_factory):
    """`http://127.0.0.1:PORT` of a `weed s3` gateway of this module's own with ADMIN and WRITER identities."""
    import subprocess
    import time
    import urllib.error
    import urllib.request

    from hive_assets_tests.conftest import free_port, stop_process
    from hive_assets_tests.services import require_service

    binary, filer = seaweedfs_filer
    root = tmp_path_factory.mktemp("s3-with-credentials")
    identities = {"identities": [
        {"name": "admin", "credentials": [{"accessKey": ADMIN_KEY, "secretKey": ADMIN_SECRET}],
         "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
        {"name": "writer", "credentials": [{"accessKey": WRITER_KEY, "secretKey": WRITER_SECRET}],
         "actions": [f"Read:{WRITABLE_BUCKET}/hive/*", f"Write:{WRITABLE_BUCKET}/hive/*"]}]}
    (root / "identities.json").write_text(json.dumps(identities))
    ports: set[int] = set()
    while len(ports) < 2:  # distinct: HTTP and gRPC (by default the gRPC port is the HTTP one + 10000)
        ports.add(free_port())
    port, grpc = sorted(ports)
    with (root / "weed-s3.log").open("w") as log:
        proc = subprocess.Popen([binary, "s3", f"-filer={filer}", "-ip.bind=127.0.0.1", f"-port={port}",
                                 f"-port.grpc={grpc}", "-port.iceberg=0", "-port.lance=0",
                                 f"-config={root / 'identities.json'}"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + GATEWAY_READY_S
        while True:
            try:  # an anonymous ListBuckets: refused (403) once it checks credentials
                urllib.request.urlopen(endpoint + "/", timeout=2).close()
                require_service("SeaweedFS gateway with credentials", f"{endpoint} answered an anonymous request")
            except urllib.error.HTTPError as exc:
                if exc.code == 403:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                require_service("SeaweedFS gateway with credentials",
                                f"`weed s3` did not answer on {endpoint}: {(root / 'weed-s3.log').read_text()[-1500:]}")
            time.sleep(0.2)
        yield endpoint
    finally:
        stop_process(proc)


@pytest.fixture
def s3_clients_anew():
    """s3fs keeps one filesystem, its credentials and endpoint read once, per set of arguments: each test
    reads the environment it sets (a process of the platform has one environment)."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    yield
    s3fs.S3FileSystem.clear_instance_cache()


def _s3_environment(monkeypatch, endpoint: str, key: str, secret: str, bucket: str) -> None:
    for name, value in {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
                        "AWS_DEFAULT_REGION": "us-east-1", "HIVE_ASSET_STORAGE": f"s3://{bucket}/hive"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def new_bucket(authenticating_s3):
    """`new_bucket(name)` makes the bucket as the administrator and returns the administrator's filesystem; the
    buckets are removed afterwards (in SeaweedFS each bucket with data holds up to 7 volumes, shared store too)."""
    import s3fs

    admin = s3fs.S3FileSystem(key=ADMIN_KEY, secret=ADMIN_SECRET, client_kwargs={"endpoint_url": authenticating_s3},
                              skip_instance_cache=True)
    made: list[str] = []

    def make(name: str):
        admin.mkdir(name)
        made.append(name)
        return admin

    yield make
    for name in made:
        admin.rm(name, recursive=True)


@pytest.mark.services
@pytest.mark.parametrize("key, secret, code", [
    (ADMIN_KEY, f"wrong-secret-{uuid.uuid4().hex}", "SignatureDoesNotMatch"),
    (f"unknown-key-{uuid.uuid4().hex[:8]}", f"unknown-secret-{uuid.uuid4().hex}", "InvalidAccessKeyId"),
], ids=["wrong secret", "unknown key id"])
def test_refused_s3_credentials_fail_the_run_at_its_start_in_one_line(local_home, authenticating_s3, s3_clients_anew,
                                                                      new_bucket, monkeypatch, key, secret, code):
    """The bucket check called wrong credentials an absent bucket (s3fs's `exists()` takes any error for no);
    before that check the step ran, its write failed with botocore's traceback, and its retry policy ran it
    twice more (78 s in an audit)."""
    bucket = f"hive-creds-{uuid.uuid4().hex[:8]}"
    admin = new_bucket(bucket)
    _s3_environment(monkeypatch, authenticating_s3, key, secret, bucket)
    defs = build_defs()
    with dg.instance_for_test() as instance:
        result = _materialize(defs, instance, "raw_production_data")
        logs = instance.all_logs(result.run_id)
        runs = instance.get_runs()
    assert not result.success
    assert failure_message(result) == (
        f"hive_assets.config.ConfigError: the object store at {authenticating_s3} refused the credentials for "
        f"s3://{bucket} ({code}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the pod's workload "
        "identity); nothing was written")
    # refused before any step started: no attempt, so none retried (the step's RetryPolicy(max_retries=2))
    kinds = [entry.dagster_event.event_type_value for entry in logs if entry.is_dagster_event]
    assert "RESOURCE_INIT_FAILURE" in kinds
    assert not [k for k in kinds if k.startswith("STEP_")], kinds
    assert len(runs) == 1
    everything = "\n".join(str(entry) for entry in logs)  # messages, errors and their stacks
    assert secret not in everything and key not in everything
    assert admin.find(bucket) == []  # nothing written


@pytest.mark.services
def test_s3_credentials_the_store_takes_are_not_refused(local_home, authenticating_s3, s3_clients_anew, new_bucket,
                                                        monkeypatch):
    """The check refuses only what no retry changes: right credentials write; a policy that allows writing
    under the prefix and not listing it (AccessDenied on the check's listing) is left to the writes (which
    list today: Dagster's UPathIOManager asks whether an asset's path is a file before it writes)."""
    from hive_assets.defs.storage import AssetStorage

    admin = new_bucket(WRITABLE_BUCKET)
    _s3_environment(monkeypatch, authenticating_s3, ADMIN_KEY, ADMIN_SECRET, WRITABLE_BUCKET)
    defs = build_defs()
    with dg.instance_for_test() as instance:
        result = _materialize(defs, instance, "raw_production_data")
    assert result.success, failure_message(result)
    assert admin.exists(f"{WRITABLE_BUCKET}/hive/raw_production_data/{SPECIALIST}/summary.json")

    import s3fs

    writer = s3fs.S3FileSystem(key=WRITER_KEY, secret=WRITER_SECRET, skip_instance_cache=True,
                               client_kwargs={"endpoint_url": authenticating_s3})
    writer.pipe(f"{WRITABLE_BUCKET}/hive/probe.json", b"{}")  # the policy: it writes, and may not list
    with pytest.raises(PermissionError):
        writer.ls(f"{WRITABLE_BUCKET}/hive")
    s3fs.S3FileSystem.clear_instance_cache()  # the io_manager's filesystem would be the administrator's
    _s3_environment(monkeypatch, authenticating_s3, WRITER_KEY, WRITER_SECRET, WRITABLE_BUCKET)
    assert AssetStorage().create_io_manager(dg.build_init_resource_context()) is not None


@pytest.fixture
def s3_store(s3_endpoint):
    """`(port, forwarder)`: a port nothing listens on, or a TcpForwarder in front of the session's SeaweedFS."""
    from hive_assets_tests.conftest import free_port
    from hive_assets_tests.tcp_forwarder import TcpForwarder

    forwarders: list[TcpForwarder] = []

    def make(fault: str) -> tuple[int, TcpForwarder | None]:
        if fault == "refused":
            return free_port(), None
        forwarders.append(TcpForwarder(int(s3_endpoint.rsplit(":", 1)[1])))
        return forwarders[-1].port, forwarders[-1]

    yield make
    for forwarder in forwarders:
        forwarder.close()


@pytest.mark.services
@pytest.mark.parametrize("fault, reason, attempts", [
    ("never answers", "did not answer within 3 s", range(4)),
    ("refused", "could not be reached (EndpointConnectionError)", range(4)),
], ids=["accepts and never answers", "refuses connections"])
def test_an_s3_store_that_does_not_answer_fails_the_run_at_its_start_in_one_line(
        hive_home, s3_store, s3_clients_anew, monkeypatch, fault, reason, attempts):
    """A store that took the connection and never answered (SeaweedFS stopped with SIGSTOP) hung the run at the
    io_manager's bucket check with nothing in its log (s3fs's and botocore's retries, 15 s per read: minutes);
    a refused connection passed the check (10 s of retries) and the step's write failed 83 s later with
    botocore's `EndpointConnectionError`, naming neither the setting nor that nothing was written."""
    import time

    port, forwarder = s3_store(fault)
    if forwarder is not None:
        forwarder.hold()
    endpoint = f"http://127.0.0.1:{port}"
    _s3_environment(monkeypatch, endpoint, ADMIN_KEY, ADMIN_SECRET, "hive-anything")
    defs = build_defs()
    with dg.instance_for_test() as instance:
        started = time.monotonic()
        result = _materialize(defs, instance, "raw_production_data")
        elapsed = time.monotonic() - started
        logs = instance.all_logs(result.run_id)
    assert not result.success
    message = failure_message(result)
    assert re.fullmatch(
        rf"hive_assets\.defs\.storage\.ObjectStoreUnreachable: the object store at {re.escape(endpoint)} "
        rf"{re.escape(reason)} \(s3://hive-anything\), 4 times in \d+ s: check AWS_ENDPOINT_URL_S3 and that the "
        r"store is up; the step wrote nothing", message), message
    # each request bounded (3 s), asked again after 3, 6 and 12 s: about 21 s refused, 33 s when each times out
    assert 20 < elapsed < 50, elapsed
    waits = [entry.user_message for entry in logs if "asked again in" in entry.user_message]
    assert waits == [f"the object store at {endpoint} {reason} (s3://hive-anything): asked again in {wait} s "
                     f"(attempt {n + 1} of 4)" for n, wait in zip(attempts, (3, 6, 12))]
    kinds = [entry.dagster_event.event_type_value for entry in logs if entry.is_dagster_event]
    assert "RESOURCE_INIT_FAILURE" in kinds and not [k for k in kinds if k.startswith("STEP_")], kinds
    everything = "\n".join(str(entry) for entry in logs)
    assert ADMIN_SECRET not in everything


@pytest.mark.services
def test_an_s3_store_that_answers_again_before_the_check_s_retry_is_written_to(
        local_home, s3_endpoint, s3_store, s3_clients_anew, monkeypatch):
    """The outage ends between two requests of the bucket check: the run goes on and writes its outputs."""
    import threading
    import time

    import s3fs

    bucket = f"hive-back-{uuid.uuid4().hex[:8]}"
    store = s3fs.S3FileSystem(key="hive-test", secret="hive-test", client_kwargs={"endpoint_url": s3_endpoint},
                              skip_instance_cache=True)
    store.mkdir(bucket)
    port, forwarder = s3_store("never answers")
    forwarder.hold()

    def release_after_the_first_request() -> None:  # it times out after 3 s; the retry comes 3 s later
        while not forwarder._relayed:
            time.sleep(0.05)
        time.sleep(4.5)
        forwarder.release()

    threading.Thread(target=release_after_the_first_request, daemon=True).start()
    _s3_environment(monkeypatch, f"http://127.0.0.1:{port}", "hive-test", "hive-test", bucket)
    defs = build_defs()
    try:
        with dg.instance_for_test() as instance:
            result = _materialize(defs, instance, "raw_production_data")
            logs = instance.all_logs(result.run_id)
        assert result.success, failure_message(result)
        assert [entry.user_message for entry in logs if "asked again in" in entry.user_message] == [
            f"the object store at http://127.0.0.1:{port} did not answer within 3 s (s3://{bucket}): asked again in "
            "3 s (attempt 1 of 4)"]
        assert store.exists(f"{bucket}/hive/raw_production_data/{SPECIALIST}/summary.json")
    finally:
        store.rm(bucket, recursive=True)
