"""Run-status sensors: the trigger document follows its run (pending -> running -> completed | failed),
idempotently, with the run's metrics. Real runs on a test instance, `build_run_status_sensor_context`."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pytest

from hive_assets.data import SQLiteStore
from hive_assets.defs.monitoring.sensors import (
    REASON_TAG, TRIGGER_TAG, trigger_canceled, trigger_failed, trigger_started, trigger_succeeded,
)
from hive_assets.defs.resources import DocumentStoreResource
from hive_assets.monitoring import record_trigger, update_trigger_status

NOW = datetime.now(timezone.utc)
TRIGGER = "feedback:business:trained-never:x1:w20000"
TAGS = {TRIGGER_TAG: TRIGGER, REASON_TAG: "feedback"}


@dg.asset
def validation_report(context) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"macro_f1": 0.81, "accuracy": 0.84, "gate": "passed", "n_test": 300})


@dg.asset
def broken(context) -> None:
    raise RuntimeError("training diverged")


@pytest.fixture
def env(hive_home):
    store = SQLiteStore(hive_home / "store.sqlite")
    with dg.instance_for_test() as instance:
        yield store, instance


def run(instance, asset, tags=TAGS):
    return dg.materialize([asset], instance=instance, tags=tags, raise_on_error=False)


def context(sensor_name, result, instance, failure=False):
    event = result.get_run_failure_event() if failure else result.get_run_success_event()
    ctx = dg.build_run_status_sensor_context(
        sensor_name=sensor_name, dagster_event=event, dagster_instance=instance, dagster_run=result.dagster_run,
        resources={"document_store": DocumentStoreResource()})
    return ctx.for_run_failure() if failure else ctx


def doc(store):
    return store.find_one("retraining_triggers", {"trigger_id": TRIGGER})


def test_success_moves_pending_to_completed_with_the_metrics(env):
    store, instance = env
    record_trigger(store, TRIGGER, "business", "feedback", NOW, feedback_count=104)
    result = run(instance, validation_report)
    assert result.success
    trigger_started(context(trigger_started.name, result, instance))
    assert (doc(store)["status"], doc(store)["dagster_run_id"]) == ("running", result.run_id)
    trigger_succeeded(context(trigger_succeeded.name, result, instance))
    final = doc(store)
    assert final["status"] == "completed" and final["completed_at"] and final["feedback_count"] == 104
    # numeric metadata of the run's materializations, read back from the instance
    assert final["metrics"] == {"validation_report.macro_f1": 0.81, "validation_report.accuracy": 0.84,
                                "validation_report.n_test": 300}
    # repeated and late events change nothing (a STARTED seen after SUCCESS does not reopen it)
    trigger_succeeded(context(trigger_succeeded.name, result, instance))
    trigger_started(context(trigger_started.name, result, instance))
    assert doc(store) == final
    assert store.count("retraining_triggers") == 1


def test_failure_marks_it_failed_with_the_error(env):
    store, instance = env
    record_trigger(store, TRIGGER, "business", "feedback", NOW)
    result = run(instance, broken)
    assert not result.success
    trigger_failed(context(trigger_failed.name, result, instance, failure=True))
    failed = doc(store)
    assert failed["status"] == "failed" and failed["dagster_run_id"] == result.run_id
    assert "broken" in failed["error"] or "training diverged" in failed["error"]
    trigger_failed(context(trigger_failed.name, result, instance, failure=True))
    assert doc(store) == failed


def test_a_lost_pending_document_is_recreated_from_the_run(env):
    store, instance = env
    result = run(instance, validation_report, tags={**TAGS, "dagster/partition": "business"})
    trigger_succeeded(context(trigger_succeeded.name, result, instance))
    d = doc(store)
    assert (d["status"], d["reason"], d["dagster_run_id"]) == ("completed", "feedback", result.run_id)


def test_a_run_launched_by_hand_gets_a_manual_document_of_its_own(env):
    """A retrain_specialist run no sensor requested (Launchpad, the CLI, an operator) is a retrain too: SPEC
    section 2's reason "manual", one document per run, following it like a trigger's; `hive status` shows it
    as the last retrain."""
    store, instance = env
    first = run(instance, validation_report, tags={"dagster/partition": "business"})
    trigger_started(context(trigger_started.name, first, instance))
    trigger_succeeded(context(trigger_succeeded.name, first, instance))
    trigger_succeeded(context(trigger_succeeded.name, first, instance))  # seen again: nothing new
    second = run(instance, broken, tags={"dagster/partition": "business"})
    trigger_failed(context(trigger_failed.name, second, instance, failure=True))
    docs = {d["trigger_id"]: d for d in store.find("retraining_triggers", {})}
    assert sorted(docs) == sorted([f"manual:{first.run_id}", f"manual:{second.run_id}"])
    done, failed = docs[f"manual:{first.run_id}"], docs[f"manual:{second.run_id}"]
    assert (done["reason"], done["status"], done["specialist_type"], done["dagster_run_id"]) == (
        "manual", "completed", "business", first.run_id)
    assert done["started_at"] and done["completed_at"] and done["metrics"]["validation_report.macro_f1"] == 0.81
    assert (failed["reason"], failed["status"], failed["dagster_run_id"]) == ("manual", "failed", second.run_id)


def test_cancel_is_terminal_and_the_status_order_is_forward_only(env):
    store, _ = env
    record_trigger(store, TRIGGER, "business", "drift", NOW, drift_score=0.4)
    assert update_trigger_status(store, TRIGGER, "running", run_id="r1")[1]
    assert not update_trigger_status(store, TRIGGER, "running", run_id="r1")[1]
    assert not update_trigger_status(store, TRIGGER, "pending", run_id="r1")[1]
    assert update_trigger_status(store, TRIGGER, "failed", run_id="r1", error="run canceled")[1]
    assert not update_trigger_status(store, TRIGGER, "completed", run_id="r1")[1]
    assert doc(store)["status"] == "failed" and doc(store)["drift_score"] == 0.4
    assert trigger_canceled.name == "retraining_trigger_canceled"


@pytest.mark.parametrize("tags", [{}, {"dagster/partition": "nosuch"}])
def test_a_hand_run_without_a_specialist_partition_writes_no_trigger(env, tags):
    """A Launchpad run with no partition, or an unknown one, fails at Dagster's own check; it used to leave a
    `manual:` trigger document whose specialist was null or 'nosuch'."""
    store, instance = env
    failed = run(instance, broken, tags=tags)
    skipped = trigger_failed(context(trigger_failed.name, failed, instance, failure=True))
    assert isinstance(skipped, dg.SkipReason) and "no specialist partition" in skipped.skip_message
    assert store.count("retraining_triggers") == 0
