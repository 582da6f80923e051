"""The document store stopping while a step runs: the step is retried after a wait, in one line naming the store
(never its password), and the retry completes what the failure interrupted; a lease the run cannot release at its
end is one warning. It failed the step at once with a stack trace, and the run with it (steps such as
`validation_report` have no retry policy), and the teardown added a second traceback (prod audit). Real Dagster
runs of the real definitions on a real FerretDB, behind a loopback forwarder that drops every connection and
refuses new ones (the store stopped), then forwards again (back on the same port)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import dagster as dg
import pytest

from hive_assets.cli._dagster import failure_message
from hive_assets.data.store.mongo import MongoStore
from hive_assets.defs import build_defs
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import STORE_DOWN_RETRY_WAITS, default_resources
from hive_assets.defs.runs.lease import RUN_LEASE, RunLeaseResource
from hive_assets.defs.training.jobs import retrain_specialist
from hive_assets.simulator import simulate
from hive_assets_tests.tcp_forwarder import TcpForwarder

pytestmark = pytest.mark.services

SECRET = "s3cret-store-pw"
SPECIALIST = "business"
NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _events(result, kind: str, step: str | None = None) -> list:
    return [e for e in result.all_events if e.event_type_value == kind and (step is None or e.step_key == step)]


@pytest.fixture
def store_behind_forwarder(hive_home, ferretdb_uri, monkeypatch) -> Iterator[tuple[TcpForwarder, MongoStore]]:
    """MONGODB_URI with a password (FerretDB on SQLite takes PLAIN and checks nothing) through a forwarder to the
    session's FerretDB, in a database of this test's own; the store itself, reached directly, to look."""
    database = f"store_down_{uuid.uuid4().hex[:8]}"
    forwarder = TcpForwarder(int(ferretdb_uri.rstrip("/").rsplit(":", 1)[1]))
    monkeypatch.setenv("MONGODB_URI", f"mongodb://hive:{SECRET}@127.0.0.1:{forwarder.port}/?authMechanism=PLAIN")
    monkeypatch.setenv("MONGODB_DATABASE", database)
    direct = MongoStore(ferretdb_uri, database)
    try:
        yield forwarder, direct
    finally:
        forwarder.cut()
        direct.client.drop_database(database)
        direct.close()


def test_a_store_that_stops_during_validation_is_waited_for_and_the_gate_verdict_written_once(
        store_behind_forwarder, mlflow_server, monkeypatch):
    forwarder, direct = store_behind_forwarder
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", f"store-down-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    simulate(direct, plans=2500, days=45, seed=21, now=NOW, specialists=(SPECIALIST,))  # passes the gate
    config = {"ops": {"enhanced_features": {"config": {"min_training_samples": 100}}}}
    seen: list[str] = []
    with dg.instance_for_test() as instance:
        def stop_then_restart() -> None:
            """The store stops as validation starts (its MLflow work takes seconds, its ledger row comes last),
            and is back once the step waits for its retry."""
            deadline = time.monotonic() + 600
            for event_type, act in ((dg.DagsterEventType.STEP_START, forwarder.cut),
                                    (dg.DagsterEventType.STEP_UP_FOR_RETRY, forwarder.open)):
                while time.monotonic() < deadline:
                    if any(record.event_log_entry.step_key == "validation_report"
                           for run in instance.get_runs()
                           for record in instance.get_records_for_run(run.run_id, of_type=event_type).records):
                        act()
                        seen.append(event_type.value)
                        break
                    time.sleep(0.05)

        watcher = threading.Thread(target=stop_then_restart, daemon=True)
        watcher.start()
        result = dg.materialize(list(build_defs().assets), selection=retrain_specialist.selection,
                                partition_key=SPECIALIST, resources=default_resources(), instance=instance,
                                run_config=config, raise_on_error=False)
        logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert seen == ["STEP_START", "STEP_UP_FOR_RETRY"], seen
    assert result.success, failure_message(result)
    # one retry of validation, after the first wait, whose cause is one line naming the store without its password
    [retry] = _events(result, "STEP_UP_FOR_RETRY", "validation_report")
    assert retry.event_specific_data.seconds_to_wait == STORE_DOWN_RETRY_WAITS[0]
    cause = retry.event_specific_data.error.cause.message
    assert cause.startswith(f"dagster._core.definitions.events.Failure: document store "
                            f"mongodb://hive:***@127.0.0.1:{forwarder.port}/"), cause
    assert "stopped answering: MongoDB at 127.0.0.1:" in cause and "(attempt 1 of 4)" in cause, cause
    assert "\n" not in cause.rstrip("\n"), cause
    assert not [e for e in result.all_events if SECRET in str(e)] and not [m for m in logged if SECRET in m]
    # the retried attempt completed the work: the run's gate verdict is in the ledger, once
    verdicts = direct.find("model_decisions", {"kind": "gate_verdict", "dagster_run_id": result.run_id})
    assert [v["decision_id"] for v in verdicts] == [f"gate:{SPECIALIST}:{result.run_id}"]
    assert not _events(result, "STEP_FAILURE")


def test_a_lease_the_run_cannot_release_with_the_store_down_is_one_warning(store_behind_forwarder):
    """The store stops during the run's last step, which needs it no more; the run lease's release at teardown
    fails: one warning line (the lease expires, or the next run's start check releases it), no traceback."""
    forwarder, direct = store_behind_forwarder

    @dg.asset(partitions_def=specialist_partitions, resource_defs={"run_lease": RUN_LEASE},
              required_resource_keys={"run_lease"})
    def last_step() -> None:
        forwarder.cut()

    with dg.instance_for_test() as instance:
        result = dg.materialize([last_step], partition_key=SPECIALIST, instance=instance, raise_on_error=False)
        entries = instance.all_logs(result.run_id)
    assert result.success
    warnings = [e.user_message for e in entries if "not released" in e.user_message]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert warnings[0].startswith(f"training lease of {SPECIALIST}"), warnings[0]
    assert "MongoDB at 127.0.0.1:" in warnings[0] and SECRET not in warnings[0], warnings[0]
    assert not [e.user_message for e in entries if e.level >= logging.ERROR]  # the teardown's traceback was one
    # held until it expires (or the next run's start check releases it): not half-released
    [lease] = direct.find("run_leases", {"owner_run_id": result.run_id})
    assert lease["state"] == "held"


@pytest.mark.parametrize("taken_over", [False, True])
def test_a_store_down_longer_than_the_lease_ttl_keeps_the_lease_unless_another_run_took_it(
        store_behind_forwarder, monkeypatch, taken_over):
    """A store failover longer than the lease's TTL in the middle of a long step (training): nobody can take the
    lease meanwhile, so once the store is back the run still holds it and writes as the holder. The heartbeat gave
    up after one TTL, and the registration's check then failed the run after its training. If another run did take
    the lease once the store was back, the check refuses to write as the holder."""
    forwarder, direct = store_behind_forwarder
    monkeypatch.setenv("HIVE_LEASE_TTL_SECONDS", "5")  # renewed every 1.7 s; the cut below lasts 8 s
    checked = []

    @dg.asset(partitions_def=specialist_partitions, resource_defs={"run_lease": RUN_LEASE})
    def long_step(context, run_lease: RunLeaseResource) -> None:
        forwarder.cut()
        time.sleep(8)
        if taken_over:  # another run took the lease over (a new token), as a takeover of a stale lease does
            direct.update_one("run_leases", {"owner_run_id": context.run_id}, {"token": "another-run's"})
        forwarder.open()
        assert run_lease._holder is not None  # the lease this run took
        run_lease.check()  # as registered_model_version does before it registers
        checked.append(context.run_id)

    with dg.instance_for_test() as instance:
        result = dg.materialize([long_step], partition_key=SPECIALIST, instance=instance, raise_on_error=False)
    [lease] = direct.find("run_leases", {"owner_run_id": result.run_id})
    if taken_over:
        assert not result.success and checked == []
        assert "was taken over by another run" in failure_message(result)
        assert lease["token"] == "another-run's"
    else:
        assert result.success, failure_message(result)
        assert checked == [result.run_id]
        assert lease["state"] == "released" and lease["release_reason"] == "run ended"
