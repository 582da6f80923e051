"""MLflow down when a step starts: the step asks first (one health request), is retried a few seconds later, then
fails in one line naming the host, never the password, having written nothing. MLflow's own client retried each
request with backoff, so a retraining took minutes to fail (audit). Real Dagster runs of the real definitions;
a refused connection is a real port nothing listens on."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import dagster as dg
import pytest

from hive_assets import runs
from hive_assets.cli._dagster import failure_message
from hive_assets.data.store import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.defs.resources import UNREACHABLE_RETRY_WAITS, default_resources
from hive_assets.defs.rollout.assets import ab_test_outcome
from hive_assets.defs.training.jobs import retrain_specialist
from hive_assets.simulator import simulate
from hive_assets_tests.basic_auth_mlflow import PASSWORD, USERNAME
from hive_assets_tests.conftest import free_port
from hive_assets_tests.tcp_forwarder import TcpForwarder

SECRET = "s3cret-pw"

# Speed is a benchmark, not a timed test (BENCHMARKS.md "MLflow down"): a run whose MLflow is down throughout failed
# after 12 min 41 s (MLflow's client, 4 minutes per attempt, then the step's retry policy twice), now in ~22 s. The
# tests tell the two apart by what happens, not by the clock; MLflow's own retries are off in them, so that the code
# without the probe fails in seconds too, on the assertions.


def _events(result, kind: str, step: str | None = None) -> list:
    return [e for e in result.all_events if e.event_type_value == kind and (step is None or e.step_key == step)]


def test_a_retraining_with_mlflow_down_fails_in_seconds_in_one_line_without_the_password_and_writes_nothing(
        hive_home, monkeypatch):
    port = free_port()  # bound, then closed: a real refused connection
    uri = f"http://hive:{SECRET}@127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the run lease's start check reads it too
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=800, days=30, seed=5, now=datetime.now(timezone.utc))
    config = {"ops": {"enhanced_features": {"config": {"min_training_samples": 100}}}}
    with dg.instance_for_test(temp_dir=str(hive_home / "dagster")) as instance:
        result = dg.materialize(list(build_defs().assets), selection=retrain_specialist.selection,
                                partition_key="business", resources=default_resources(), instance=instance,
                                run_config=config, raise_on_error=False)
        stored = [p for p in (hive_home / "dagster").rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]

    assert not result.success
    # the steps before MLflow's ran as they do; the first MLflow step stopped the run, the rest never started
    materialized = {e.asset_key.path[-1] for e in _events(result, "ASSET_MATERIALIZATION")}
    assert materialized == {"raw_production_data", "enhanced_features"}
    assert [e.step_key for e in _events(result, "STEP_FAILURE")] == ["trained_model"]
    # MLflow had its chances to come back: the step was retried after each wait, then failed
    assert len(_events(result, "STEP_UP_FOR_RETRY", "trained_model")) == len(UNREACHABLE_RETRY_WAITS)
    message = failure_message(result)  # what `hive train` prints
    assert message.startswith(f"MLflow at http://hive:***@127.0.0.1:{port} unreachable ("), message
    assert "\n" not in message and SECRET not in message
    # the step's own failure is the cause, as the UI's run page shows it (it was "Exceeded max_retries of 3")
    [failed] = _events(result, "STEP_FAILURE")
    assert "unreachable (" in failed.step_failure_data.error.message
    assert "attempt 4 of 4" in failed.step_failure_data.error.message
    # of the last attempt only ("the step wrote nothing" was wrong when an earlier one was cut mid-way)
    assert "; this attempt wrote nothing (an earlier one" in failed.step_failure_data.error.message
    assert not [e for e in result.all_events if SECRET in str(e)] and stored == []
    # nothing written past collection: no ledger row (registration, alias, gate, skip), no A/B record, no output
    assert store.count("model_decisions") == 0 and store.count("ab_tests") == 0
    outputs = hive_home / "assets"
    assert sorted(p.name for p in outputs.iterdir()) == ["enhanced_features", "raw_production_data"]


def test_the_run_start_check_of_a_dead_run_does_not_wait_for_mlflow_down(hive_home, monkeypatch):
    """A run's start marks a dead run of its specialist failed and ends that run's MLflow runs; with MLflow down
    its client retried for minutes before the check gave up on them. It asks first, warns in one line and goes
    on: the Dagster side is fixed, the MLflow runs are ended by the next check or `hive doctor --fix`."""
    uri = f"http://hive:{SECRET}@127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=200, days=10, seed=5, now=datetime.now(timezone.utc))
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                  text=True).stdout)
    defs = build_defs()
    with dg.instance_for_test(temp_dir=str(hive_home / "dagster")) as instance:
        dead = instance.create_run_for_job(defs.resolve_job_def("retrain_specialist"),
                                           status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": "business"})
        lease, _ = runs.acquire(store, runs.TRAINING, "business", dead.run_id, ttl_seconds=3600)
        store.update_one(runs.COLLECTION, {"lease_id": lease.lease_id}, {"pid": dead_pid})
        result = dg.materialize(list(defs.assets), selection=["raw_production_data"], partition_key="business",
                                resources=default_resources(), instance=instance, raise_on_error=False)
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert result.success  # collection needs no MLflow
    (warning,) = [line for line in logged if "MLflow unreachable for the run-start check" in line]
    assert f"MLflow at http://hive:***@127.0.0.1:{uri.rsplit(':', 1)[1]} unreachable (" in warning
    assert "\n" not in warning and SECRET not in warning


@pytest.mark.services
def test_a_step_whose_mlflow_comes_back_before_its_retry_succeeds(hive_home, mlflow_server, monkeypatch):
    """`ab_test_outcome` has no retry policy of its own: MLflow's client retrying used to be what survived a
    restart of a few seconds. Refused at the step's start, it is retried; MLflow is back by then."""
    listener = TcpForwarder(int(mlflow_server.rsplit(":", 1)[1]), listening=False)
    uri = f"http://127.0.0.1:{listener.port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with dg.instance_for_test(temp_dir=str(hive_home / "dagster")) as instance:
        def open_at_first_retry() -> None:  # MLflow comes back once the step was refused and waits for its retry
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if any(instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY).records
                       for run in instance.get_runs()):
                    listener.open()
                    return
                time.sleep(0.1)

        watcher = threading.Thread(target=open_at_first_retry, daemon=True)
        watcher.start()
        try:
            result = dg.materialize([ab_test_outcome], partition_key="business", resources=default_resources(),
                                    instance=instance, raise_on_error=False)
        finally:
            listener.close()
    assert result.success, failure_message(result)
    # refused once, retried after the first wait, through to the real server
    assert len(_events(result, "STEP_UP_FOR_RETRY", "ab_test_outcome")) == 1


@pytest.mark.services
def test_a_server_without_mlflow_at_the_uri_s_path_fails_the_step_at_once_without_retries(hive_home, mlflow_server,
                                                                                            monkeypatch):
    """An answer is not an outage: a URI whose path has no MLflow API (HTTP 404) cannot be fixed by waiting."""
    uri = mlflow_server.replace("http://", f"http://hive:{SECRET}@") + "/not/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with dg.instance_for_test(temp_dir=str(hive_home / "dagster")) as instance:
        result = dg.materialize([ab_test_outcome], partition_key="business", resources=default_resources(),
                                instance=instance, raise_on_error=False)
    assert not result.success and not _events(result, "STEP_UP_FOR_RETRY")
    message = failure_message(result)
    assert "hive:***@" in message and "refused the request (HTTP 404: no MLflow API at this address" in message
    assert message.endswith("the step wrote nothing: fix MLFLOW_TRACKING_URI") and SECRET not in message


@pytest.mark.services
def test_a_registry_that_refuses_the_credentials_fails_the_step_at_once_without_retries(hive_home, basic_auth_mlflow,
                                                                                       monkeypatch):
    """Wrong credentials are an answer, not an outage: /health needs no login (MLflow's basic-auth app), so the
    step started and failed on the registry's 401; no wait fixes it, so no retry is spent on it."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

    def step_on(uri: str):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        with dg.instance_for_test(temp_dir=str(hive_home / "dagster")) as instance:
            return dg.materialize([ab_test_outcome], partition_key="business", resources=default_resources(),
                                  instance=instance, raise_on_error=False)

    result = step_on(basic_auth_mlflow.with_credentials(USERNAME, SECRET))
    assert not result.success and not _events(result, "STEP_UP_FOR_RETRY")
    message = failure_message(result)
    assert message.startswith(f"MLflow at http://{USERNAME}:***@127.0.0.1:{basic_auth_mlflow.port} refused the "
                              "request (HTTP 401: the credentials are wrong or missing"), message
    assert message.endswith("the step wrote nothing: fix the credentials") and SECRET not in message
    assert not [e for e in result.all_events if SECRET in str(e)]
    # with the right password the same step runs: it is the credentials that were refused
    result = step_on(basic_auth_mlflow.with_credentials(USERNAME, PASSWORD))
    assert result.success, failure_message(result)


def test_mlflow_s_own_retries_during_a_step_are_in_the_run_s_log(hive_home, mlflow_server, monkeypatch):
    """MLflow stopping in the middle of a step is left to MLflow's client, which retries each request with backoff
    for minutes; its warnings went only to the worker's stderr, so the run's log said nothing all that time. With
    the root dagster.yaml's `python_logs`, each retry is a warning in the run's event log, with the host and
    port and never the password; MLflow back, the step carries on."""
    from mlflow import MlflowClient

    from hive_assets_tests.deploy.test_deploy_invariants import ROOT_INSTANCE

    listener = TcpForwarder(int(mlflow_server.rsplit(":", 1)[1]))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://hive:{SECRET}@127.0.0.1:{listener.port}")
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=600, days=30, seed=5, now=datetime.now(timezone.utc))
    config = {"ops": {"enhanced_features": {"config": {"min_training_samples": 100}},
                      "trained_model": {"config": {"model_type": "logistic"}}}}
    overrides = {"python_logs": ROOT_INSTANCE["python_logs"]}
    retrying: list = []
    polling_errors: list[str] = []
    with dg.instance_for_test(temp_dir=str(hive_home / "dagster"), overrides=overrides) as instance:
        def retry_warnings() -> list:  # MLflow's uploads log from their own threads: the whole run's log
            return [e for run in instance.get_runs() for e in instance.all_logs(run.run_id)
                    if not e.is_dagster_event and e.message.startswith("Retrying (")]

        def training_run_exists() -> bool:  # asked of the server itself, not through the forwarder
            client = MlflowClient(mlflow_server)
            return any(client.search_runs([e.experiment_id for e in client.search_experiments()],
                                          f"tags.`dagster.run_id` = '{run.run_id}'") for run in instance.get_runs())

        def seen(predicate, deadline: float) -> bool:
            """Polled until true or the deadline; a read refused meanwhile (the event log's SQLite locked by the
            run's writes, the server busy) is asked again, not the end of the watcher."""
            while time.monotonic() < deadline:
                try:
                    if predicate():
                        return True
                except Exception as exc:  # the watcher's own reads, not the behaviour under test
                    polling_errors.append(repr(exc))
                time.sleep(0.05)
            return False

        def cut_while_training_then_open_at_the_first_retry() -> None:
            deadline = time.monotonic() + 120
            seen(training_run_exists, deadline)  # past the step's probe: it trains
            listener.cut()
            try:
                retrying.append(seen(retry_warnings, deadline))
            finally:  # whatever happened, MLflow comes back
                listener.open()

        watcher = threading.Thread(target=cut_while_training_then_open_at_the_first_retry, daemon=True)
        watcher.start()
        try:
            result = dg.materialize(list(build_defs().assets), partition_key="business", resources=default_resources(),
                                    selection=["raw_production_data", "enhanced_features", "trained_model"],
                                    instance=instance, run_config=config, raise_on_error=False)
        finally:
            watcher.join(timeout=5)
            listener.close()
        warnings = retry_warnings()
        everything = [str(e) for run in instance.get_runs() for e in instance.all_logs(run.run_id)]
    assert result.success, (failure_message(result), retrying, polling_errors[-3:])
    assert retrying == [True] and warnings, "MLflow's retries are not in the run's log"
    # a refused connection names the host and port; one cut in the middle of a request, the request's path
    assert all(w.level == 30 and (f"port={listener.port}" in w.message or "/api/2.0/mlflow" in w.message)
               for w in warnings), [w.message for w in warnings]
    assert not [e for e in everything if SECRET in e]
    # the step was cut in the middle (after its MLflow run was created) and was not retried by Dagster
    assert not _events(result, "STEP_UP_FOR_RETRY")
