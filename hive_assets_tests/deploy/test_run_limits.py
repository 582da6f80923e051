"""The run queue and the run timeout, on a real instance built from the repository's dagster.yaml (the one
the CLI writes into every instance; deploy/ holds the same rule, test_deploy_invariants checks they agree).

The runs are tagged as Dagster tags them when a sensor or the Launchpad requests a partition of a job (the
job's run tags, then its tags for the partition). Which queued runs may start is decided by the queued-run
daemon's own selection (`QueuedRunCoordinatorDaemon._get_runs_to_dequeue`); which runs are past their
max runtime by run monitoring's own `check_run_timeout`, at a chosen "now".
"""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.test_utils import create_run_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._daemon.monitoring import run_monitoring
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from hive_assets.config import ConfigError, retrain_max_runtime_seconds
from hive_assets.defs import build_defs
from hive_assets.defs.k8s import training_run_tags
from hive_assets.defs.monitoring.sensors import run_in_flight

REPO = Path(__file__).resolve().parents[2]
ROOT_INSTANCE = yaml.safe_load((REPO / "dagster.yaml").read_text())
DEFS = build_defs()
QUEUED = dg.DagsterRunStatus.QUEUED


@pytest.fixture(scope="module")
def module_instance():
    """A SQLite instance with the root dagster.yaml's queue and run monitoring (storage stays the test's)."""
    overrides = {key: ROOT_INSTANCE[key] for key in ("concurrency", "run_monitoring")}
    with dg.instance_for_test(overrides=overrides) as instance:
        yield instance


@pytest.fixture
def instance(module_instance):
    """The module's instance without the runs of the previous test."""
    module_instance.wipe()
    return module_instance


def origin(job_name: str) -> RemoteJobOrigin:
    """Where a queued run's job lives (the queue needs it to launch the run; it is not loaded here)."""
    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="hive_assets.definitions"),
                                           location_name="hive-assets")
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job_name)


def operator_run(instance, job_name: str, status: dg.DagsterRunStatus):
    return create_run_for_test(instance, job_name=job_name, status=status, remote_job_origin=origin(job_name),
                               tags=DEFS.resolve_job_def(job_name).run_tags)


def requested_run(instance, job_name: str, partition: str, status: dg.DagsterRunStatus):
    job = DEFS.resolve_job_def(job_name)
    request = dg.RunRequest(partition_key=partition).with_resolved_tags_and_config(job, [], None)
    return create_run_for_test(instance, job_name=job_name, status=status, remote_job_origin=origin(job_name),
                               tags={**job.run_tags, **request.tags})


def start(instance, run) -> None:
    instance.handle_run_event(run.run_id, DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name))


def dequeued(instance) -> set[str]:
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=5)
    return {run.run_id for run in daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)}


def test_training_is_limited_per_specialist_and_never_holds_back_an_ab_check(instance):
    training = requested_run(instance, "retrain_specialist", "business", dg.DagsterRunStatus.STARTED)
    assert training.tags["hive/retrain"] == "business"
    queued = {
        "second business training": requested_run(instance, "retrain_specialist", "business", QUEUED),
        "technical training": requested_run(instance, "retrain_specialist", "technical", QUEUED),
        "business A/B check": requested_run(instance, "ab_test_check", "business", QUEUED),
        "technical A/B check": requested_run(instance, "ab_test_check", "technical", QUEUED),
        "an operator's promote": operator_run(instance, "promote_model_version", QUEUED),
    }
    allowed = dequeued(instance)
    assert {name for name, run in queued.items() if run.run_id in allowed} == set(queued) - {"second business training"}

    # five trainings at once (one per specialist) still leave room for every A/B check and an operator
    for specialist in ("technical", "behavior", "evolution", "architecture"):
        start(instance, requested_run(instance, "retrain_specialist", specialist, dg.DagsterRunStatus.STARTED))
    allowed = dequeued(instance)
    assert queued["business A/B check"].run_id in allowed and queued["an operator's promote"].run_id in allowed
    assert queued["technical training"].run_id not in allowed


def test_the_previous_rule_queued_the_ab_check_behind_training(instance):
    """The rule before this change (`dagster/partition`, limit 1): the same runs, the A/B check waits."""
    with dg.instance_for_test(overrides={"concurrency": {"runs": {"max_concurrent_runs": 5, "tag_concurrency_limits": [
            {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]}}}) as old:
        requested_run(old, "retrain_specialist", "business", dg.DagsterRunStatus.STARTED)
        check = requested_run(old, "ab_test_check", "business", dg.DagsterRunStatus.QUEUED)
        assert check.run_id not in dequeued(old)


def test_the_in_flight_guard_still_finds_training_runs(instance):
    assert run_in_flight(instance, "business") is None
    queued = requested_run(instance, "retrain_specialist", "business", dg.DagsterRunStatus.QUEUED)
    requested_run(instance, "ab_test_check", "business", dg.DagsterRunStatus.STARTED)
    assert run_in_flight(instance, "business") == queued.run_id
    assert run_in_flight(instance, "technical") is None


def timed_out(instance, run, after_seconds: float, monkeypatch) -> bool:
    """Whether run monitoring cancels `run` when checked `after_seconds` after it started."""
    start(instance, run)
    started = instance.get_run_record_by_id(run.run_id).start_time
    monkeypatch.setattr(run_monitoring, "get_current_timestamp", lambda: started + after_seconds)
    record = instance.get_run_record_by_id(run.run_id)
    run_monitoring.check_run_timeout(instance, record, logging.getLogger("test"),
                                     float(instance.run_monitoring_max_runtime_seconds))
    return instance.get_run_by_id(run.run_id).status != dg.DagsterRunStatus.STARTED


@pytest.mark.parametrize("job_name, limit", [("retrain_specialist", 14400), ("ab_test_check", 1800),
                                              ("__ASSET_JOB", 14400)])
def test_run_monitoring_terminates_a_run_past_its_max_runtime(instance, monkeypatch, job_name, limit):
    assert instance.run_monitoring_enabled
    def make():
        if job_name == "__ASSET_JOB":  # an ad-hoc materialization: the instance's max_runtime_seconds
            return create_run_for_test(instance, job_name=job_name, status=dg.DagsterRunStatus.STARTED)
        return requested_run(instance, job_name, "business", dg.DagsterRunStatus.STARTED)

    assert not timed_out(instance, make(), limit - 5, monkeypatch)
    assert timed_out(instance, make(), limit + 5, monkeypatch)


def test_the_retrain_max_runtime_comes_from_its_setting(monkeypatch):
    monkeypatch.delenv("HIVE_RETRAIN_MAX_RUNTIME_SECONDS", raising=False)
    assert retrain_max_runtime_seconds() == 14400
    monkeypatch.setenv("HIVE_RETRAIN_MAX_RUNTIME_SECONDS", "7200")
    assert training_run_tags()["dagster/max_runtime"] == "7200"
    for bad in ("4h", "30"):
        monkeypatch.setenv("HIVE_RETRAIN_MAX_RUNTIME_SECONDS", bad)
        with pytest.raises(ConfigError, match=f"HIVE_RETRAIN_MAX_RUNTIME_SECONDS must be .*got '{bad}'"):
            training_run_tags()
