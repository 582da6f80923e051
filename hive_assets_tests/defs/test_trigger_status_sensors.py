"""Run-status sensors: the trigger document follows its run (pending -> running -> completed | failed),
idempotently, with the run's metrics. Real runs on a test instance, `build_run_status_sensor_context`."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import dagster as dg
import pytest

from hive_assets.data import SQLiteStore
from hive_assets.defs.monitoring.sensors import (
    FAILURE_TAG, NO_FAILURE, REASON_TAG, TRIGGER_TAG, trigger_canceled, trigger_failed, trigger_started,
    trigger_succeeded,
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


FIXED = "HIVE_TEST_TRAINING_FIXED"  # the re-executed training succeeds once this is set
REFUSED = "HIVE_TEST_SETUP_REFUSED"  # while set, the run's setup is refused (as when another run holds the lease)


class TrainingLease(dg.ConfigurableResource):
    def setup_for_execution(self, context) -> None:
        if os.environ.get(REFUSED):
            raise dg.Failure("the training lease of business is held by another run")


@dg.asset
def collected() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 400})


@dg.asset(deps=[collected])
def flaky_training(lease: TrainingLease) -> dg.MaterializeResult:
    if not os.environ.get(FIXED):
        raise RuntimeError("training diverged")
    return dg.MaterializeResult(metadata={"macro_f1": 0.79})


def flaky_retrain() -> dg.JobDefinition:
    """A two-step retraining whose training fails until FIXED is set, and whose setup is refused while REFUSED is
    (module level: `dg.reconstructable`)."""
    job = dg.define_asset_job("flaky_retrain", executor_def=dg.in_process_executor)
    return dg.Definitions(assets=[collected, flaky_training], jobs=[job],
                          resources={"lease": TrainingLease()}).resolve_job_def("flaky_retrain")


@pytest.fixture
def env(hive_home):
    store = SQLiteStore(hive_home / "store.sqlite")
    with dg.instance_for_test() as instance:
        yield store, instance


def run(instance, asset, tags=TAGS):
    return dg.materialize([asset], instance=instance, tags=tags, raise_on_error=False)


def context(sensor_name, result, instance, failure=False, ended=False):
    """The sensor's context for `result`'s event. STARTED is seen while the run runs (as the daemon usually
    sees it), unless `ended`: the run as the instance has it now, finished."""
    dagster_run = result.dagster_run
    if sensor_name == trigger_started.name:
        (start,) = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.RUN_START).records
        event = start.event_log_entry.dagster_event
        if not ended:
            dagster_run = dagster_run.with_status(dg.DagsterRunStatus.STARTED)
    else:
        event = result.get_run_failure_event() if failure else result.get_run_success_event()
    ctx = dg.build_run_status_sensor_context(
        sensor_name=sensor_name, dagster_event=event, dagster_instance=instance, dagster_run=dagster_run,
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
    assert final["metrics"] == {"validation_report": {"macro_f1": 0.81, "accuracy": 0.84, "n_test": 300}}
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
    # the failed step and its own error, not Dagster's "Execution of run ... failed. Steps failed: ['broken']"
    assert failed["error"] == "broken: RuntimeError: training diverged"
    assert instance.get_run_by_id(result.run_id).tags[FAILURE_TAG] == failed["error"]  # in the Runs list
    trigger_failed(context(trigger_failed.name, result, instance, failure=True))
    assert doc(store) == failed


@dg.asset
def report() -> int:
    return 1


@dg.asset_check(asset=report, blocking=True)
def min_metrics() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                               description="business: macro_f1 0.612 < 0.65 (95% CI [0.551, 0.668])")


@dg.asset(deps=[report])
def registered() -> int:
    return 2


def test_a_failed_gate_is_recorded_with_the_check_s_words(env):
    """A blocking gate's failure was recorded as Dagster's "1 blocking asset check failed with ERROR severity:
    report: min_metrics" (or the run's "Steps failed: [...]"): `hive status` said "failed" and not why."""
    store, instance = env
    record_trigger(store, TRIGGER, "business", "feedback", NOW)
    defs = dg.Definitions(assets=[report, registered], asset_checks=[min_metrics],
                          jobs=[dg.define_asset_job("gated", executor_def=dg.in_process_executor)])
    result = defs.resolve_job_def("gated").execute_in_process(instance=instance, tags=TAGS, raise_on_error=False)
    assert not result.success
    trigger_failed(context(trigger_failed.name, result, instance, failure=True))
    expected = "check min_metrics failed: business: macro_f1 0.612 < 0.65 (95% CI [0.551, 0.668])"
    assert doc(store)["error"] == expected
    assert instance.get_run_by_id(result.run_id).tags[FAILURE_TAG] == expected


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
    assert done["started_at"] and done["completed_at"] and done["metrics"]["validation_report"]["macro_f1"] == 0.81
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


def test_a_late_event_of_an_earlier_attempt_changes_nothing(env):
    """Run-status sensors see events late and out of order (each has its own cursor, one may be stopped): an event
    of a run the trigger followed before, or of one its current run re-executes, changes nothing; a re-execution
    it has not followed yet takes a failed trigger up again; a completed one is final."""
    store, _ = env
    record_trigger(store, TRIGGER, "business", "feedback", NOW)
    # r1's events were not seen yet (its sensor stopped); r2 re-executes it and fails
    assert update_trigger_status(store, TRIGGER, "failed", run_id="r2", parent_run_id="r1", error="diverged")[1]
    assert not update_trigger_status(store, TRIGGER, "failed", run_id="r1", error="killed")[1]  # r2's parent
    assert not update_trigger_status(store, TRIGGER, "running", run_id="r1")[1]
    assert update_trigger_status(store, TRIGGER, "running", run_id="r3", parent_run_id="r1")[1]  # r1 again
    assert not update_trigger_status(store, TRIGGER, "failed", run_id="r2", parent_run_id="r1")[1]  # followed before
    assert update_trigger_status(store, TRIGGER, "completed", run_id="r3", parent_run_id="r1")[1]
    assert not update_trigger_status(store, TRIGGER, "failed", run_id="r4", parent_run_id="r3")[1]
    done = doc(store)
    assert (done["status"], done["dagster_run_id"], done.get("error")) == ("completed", "r3", None)
    assert done["attempts"] == [{"run_id": "r2", "parent_run_id": "r1"}, {"run_id": "r3", "parent_run_id": "r1"}]


@pytest.mark.parametrize("tags", [{}, {"dagster/partition": "nosuch"}])
def test_a_hand_run_without_a_specialist_partition_writes_no_trigger(env, tags):
    """A Launchpad run with no partition, or an unknown one, fails at Dagster's own check; it used to leave a
    `manual:` trigger document whose specialist was null or 'nosuch'."""
    store, instance = env
    failed = run(instance, broken, tags=tags)
    skipped = trigger_failed(context(trigger_failed.name, failed, instance, failure=True))
    assert isinstance(skipped, dg.SkipReason) and "no specialist partition" in skipped.skip_message
    assert store.count("retraining_triggers") == 0


def reexecute_from_failure(instance, parent_id: str, *, all_steps: bool = False):
    """The UI's "Re-execute from failure" (or "Re-execute all" with `all_steps`): the failed steps (every step)
    again, in a run with the parent's tags (the trigger's, the partition's and FAILURE_TAG included) and Dagster's
    parent and root run ids."""
    parent = instance.get_run_by_id(parent_id)
    tags = {k: v for k, v in parent.tags.items() if not k.startswith("dagster/") or k == "dagster/partition"}
    options = dg.ReexecutionOptions(parent_id) if all_steps else dg.ReexecutionOptions.from_failure(parent_id, instance)
    return dg.execute_job(dg.reconstructable(flaky_retrain), instance, tags=tags, reexecution_options=options)


def test_a_re_execution_of_a_failed_retrain_takes_its_trigger_up_again(env, monkeypatch):
    """A re-execution of a failed sensor-launched retrain (the UI's "Re-execute from failure", or Dagster's run
    retries) carries the trigger's tag: the failed document follows it, failed again naming the new run and its
    error, then completed naming the run that did it (it stayed failed: a terminal status was final); late
    events of the earlier attempts change nothing."""
    store, instance = env
    monkeypatch.delenv(FIXED, raising=False)
    record_trigger(store, TRIGGER, "business", "feedback", NOW, feedback_count=104)
    first = dg.execute_job(dg.reconstructable(flaky_retrain), instance, tags=TAGS)
    assert not first.success
    trigger_started(context(trigger_started.name, first, instance))
    trigger_failed(context(trigger_failed.name, first, instance, failure=True))
    assert (doc(store)["status"], doc(store)["dagster_run_id"]) == ("failed", first.run_id)

    second = reexecute_from_failure(instance, first.run_id)  # fails again
    assert not second.success
    assert (second.dagster_run.parent_run_id, second.dagster_run.tags[TRIGGER_TAG]) == (first.run_id, TRIGGER)
    trigger_started(context(trigger_started.name, second, instance))
    assert (doc(store)["status"], doc(store)["dagster_run_id"]) == ("running", second.run_id)
    trigger_failed(context(trigger_failed.name, second, instance, failure=True))
    failed = doc(store)
    assert (failed["status"], failed["dagster_run_id"]) == ("failed", second.run_id)
    assert "flaky_training" in failed["error"]

    monkeypatch.setenv(FIXED, "1")
    third = reexecute_from_failure(instance, second.run_id)  # only the training step, which succeeds now
    assert third.success and third.dagster_run.root_run_id == first.run_id
    trigger_started(context(trigger_started.name, third, instance))
    trigger_failed(context(trigger_failed.name, second, instance, failure=True))  # seen late: changes nothing
    assert (doc(store)["status"], doc(store)["dagster_run_id"]) == ("running", third.run_id)
    trigger_succeeded(context(trigger_succeeded.name, third, instance))
    done = doc(store)
    assert (done["status"], done["dagster_run_id"], done["feedback_count"]) == ("completed", third.run_id, 104)
    assert done["metrics"] == {"flaky_training": {"macro_f1": 0.79}} and "error" not in done
    assert [a["run_id"] for a in done["attempts"]] == [first.run_id, second.run_id, third.run_id]
    for late in (lambda: trigger_started(context(trigger_started.name, second, instance)),
                 lambda: trigger_failed(context(trigger_failed.name, first, instance, failure=True)),
                 lambda: trigger_succeeded(context(trigger_succeeded.name, third, instance))):
        late()
        assert doc(store) == done
    assert store.count("retraining_triggers") == 1


def test_a_re_execution_does_not_show_its_parent_s_failure_reason(env, monkeypatch):
    """A re-execution (from failure or of all steps, or a run retry) copies its parent's tags, FAILURE_TAG
    included: one that ran, succeeded, or failed without a step's error (its setup refused) showed the parent's
    reason in the Runs list. Dagster 1.13 cannot delete a run tag, so the sensors overwrite the copy: NO_FAILURE
    once the run started or succeeded, the run failure's own error once it failed; a STARTED seen after a failure
    leaves that error."""
    store, instance = env
    monkeypatch.delenv(FIXED, raising=False)
    monkeypatch.delenv(REFUSED, raising=False)
    record_trigger(store, TRIGGER, "business", "feedback", NOW)
    first = dg.execute_job(dg.reconstructable(flaky_retrain), instance, tags=TAGS)
    trigger_failed(context(trigger_failed.name, first, instance, failure=True))
    parents = "flaky_training: RuntimeError: training diverged"

    def tag(result):
        return instance.get_run_by_id(result.run_id).tags.get(FAILURE_TAG)

    assert tag(first) == parents
    monkeypatch.setenv(REFUSED, "1")
    refused = reexecute_from_failure(instance, first.run_id)
    assert not refused.success and tag(refused) == parents  # copied by the re-execution
    trigger_failed(context(trigger_failed.name, refused, instance, failure=True))
    own = " ".join(doc(store)["error"].split())  # the run failure's error, as its trigger document has it
    assert (doc(store)["dagster_run_id"], tag(refused)) == (refused.run_id, own)
    # the refusal's own words, not Dagster's wrapper ("Error executing resource_fn on ResourceDefinition lease")
    assert own.endswith("the training lease of business is held by another run") and "resource_fn" not in own
    trigger_started(context(trigger_started.name, refused, instance, ended=True))  # seen late: its error stays
    assert tag(refused) == own

    monkeypatch.delenv(REFUSED)
    monkeypatch.setenv(FIXED, "1")
    running = reexecute_from_failure(instance, first.run_id)
    assert running.success and tag(running) == parents
    trigger_started(context(trigger_started.name, running, instance))  # seen while it runs
    assert tag(running) == NO_FAILURE
    trigger_succeeded(context(trigger_succeeded.name, running, instance))
    assert tag(running) == NO_FAILURE
    again = reexecute_from_failure(instance, first.run_id, all_steps=True)  # its STARTED not seen
    assert again.success and tag(again) == parents
    trigger_succeeded(context(trigger_succeeded.name, again, instance))
    assert tag(again) == NO_FAILURE
    assert tag(first) == parents  # the parent keeps its own


def test_a_re_execution_of_a_failed_hand_launched_retrain_takes_its_manual_trigger_up(env, monkeypatch):
    """A retrain launched by hand (no trigger tag: its document is `manual:<run id>`) fails, and is re-executed
    from failure. The re-execution recorded a `manual:` document of its own and left the first one failed, so
    `hive status` and the triggers' history showed a failed retrain that had been done; it takes the document
    up as a sensor-launched retrain's re-execution does (completed naming it, its attempts listed), and a late
    event of the first run changes nothing."""
    store, instance = env
    monkeypatch.delenv(FIXED, raising=False)
    first = dg.execute_job(dg.reconstructable(flaky_retrain), instance, tags={"dagster/partition": "business"})
    assert not first.success
    trigger_started(context(trigger_started.name, first, instance))
    trigger_failed(context(trigger_failed.name, first, instance, failure=True))
    manual = f"manual:{first.run_id}"
    assert store.find_one("retraining_triggers", {"trigger_id": manual})["status"] == "failed"

    monkeypatch.setenv(FIXED, "1")
    second = reexecute_from_failure(instance, first.run_id)
    assert second.success and second.dagster_run.parent_run_id == first.run_id
    assert TRIGGER_TAG not in second.dagster_run.tags  # nothing names the trigger but the parent run
    trigger_started(context(trigger_started.name, second, instance))
    trigger_succeeded(context(trigger_succeeded.name, second, instance))
    trigger_failed(context(trigger_failed.name, first, instance, failure=True))  # seen late: changes nothing
    (done,) = store.find("retraining_triggers", {})
    assert (done["trigger_id"], done["reason"], done["status"], done["dagster_run_id"]) == (
        manual, "manual", "completed", second.run_id)
    assert [a["run_id"] for a in done["attempts"]] == [first.run_id, second.run_id]
    assert done["metrics"] == {"flaky_training": {"macro_f1": 0.79}} and "error" not in done


def test_a_started_event_seen_after_the_run_ended_does_not_reopen_its_trigger(env):
    """The run-status sensors run in threads (deploy/dagster.yaml): STARTED and SUCCESS of a short run followed in
    one tick, and "running", written last, replaced "completed" (about half of 24 pairs on FerretDB). The
    STARTED of a run that has ended now writes nothing: the final status is its own sensor's."""
    store, instance = env
    record_trigger(store, TRIGGER, "business", "feedback", NOW)
    result = run(instance, validation_report)
    skipped = trigger_started(context(trigger_started.name, result, instance, ended=True))
    assert "has ended (SUCCESS): trigger" in skipped.skip_message and doc(store)["status"] == "pending"
    trigger_succeeded(context(trigger_succeeded.name, result, instance))
    assert doc(store)["status"] == "completed"


def test_the_reconcile_sensor_brings_each_trigger_to_its_run_s_outcome(env):
    """The run-status sensors' cursors move on whatever an evaluation did: an update skipped while the store was
    down stayed undone, and a "running" that replaced "completed" stayed. The reconcile pass reads the latest
    finished runs and writes what those sensors would have, once: a failed run with its cause, a succeeded one
    with its metrics, a run launched by hand its manual document; a document already right is not rewritten."""
    from hive_assets.defs.monitoring.sensors import reconcile_triggers, trigger_reconcile

    store, instance = env
    record_trigger(store, TRIGGER, "business", "feedback", NOW, feedback_count=104)
    succeeded = run(instance, validation_report)  # its SUCCESS event missed: the store was down
    failed = run(instance, broken, tags={TRIGGER_TAG: "drift:business:v1:t1", REASON_TAG: "drift"})
    record_trigger(store, "drift:business:v1:t1", "business", "drift", NOW, drift_score=0.4)
    update_trigger_status(store, "drift:business:v1:t1", "running", run_id=failed.run_id)  # its FAILURE missed
    by_hand = run(instance, validation_report, tags={"dagster/partition": "technical"})  # no document at all
    run(instance, validation_report, tags={})  # a run of no specialist partition: no document (below)

    jobs = (succeeded.dagster_run.job_name,)
    changed = reconcile_triggers(instance, store, job_names=jobs)
    assert sorted(changed) == sorted([TRIGGER, "drift:business:v1:t1", f"manual:{by_hand.run_id}"])
    done = doc(store)
    assert (done["status"], done["dagster_run_id"], done["feedback_count"]) == ("completed", succeeded.run_id, 104)
    assert done["metrics"] == {"validation_report": {"macro_f1": 0.81, "accuracy": 0.84, "n_test": 300}}
    drift = store.find_one("retraining_triggers", {"trigger_id": "drift:business:v1:t1"})
    assert (drift["status"], drift["dagster_run_id"]) == ("failed", failed.run_id)
    assert drift["error"] == "broken: RuntimeError: training diverged" and drift["drift_score"] == 0.4
    manual = store.find_one("retraining_triggers", {"trigger_id": f"manual:{by_hand.run_id}"})
    assert (manual["status"], manual["reason"], manual["specialist_type"]) == ("completed", "manual", "technical")
    assert store.count("retraining_triggers") == 3
    before = {d["trigger_id"]: d for d in store.find("retraining_triggers")}
    assert reconcile_triggers(instance, store, job_names=jobs) == []  # once
    # the race's outcome: "running" written over "completed" (a replace of the whole document)
    store.upsert_many("retraining_triggers", [{**done, "status": "running", "completed_at": None}])
    assert reconcile_triggers(instance, store, job_names=jobs) == [TRIGGER]
    after = {d["trigger_id"]: d for d in store.find("retraining_triggers")}
    assert {k: v for k, v in after.items() if k != TRIGGER} == {k: v for k, v in before.items() if k != TRIGGER}
    assert after[TRIGGER]["status"] == "completed" and after[TRIGGER]["completed_at"] is not None
    # the sensor itself (retrain_specialist's runs: none here), with the definitions' resources
    ctx = dg.build_sensor_context(instance=instance, resources={"document_store": DocumentStoreResource()})
    assert trigger_reconcile(ctx).skip_message == "every trigger document follows its run"


def test_the_reconcile_sensor_gives_runs_the_failure_tag_their_sensor_missed(env, monkeypatch):
    """The run-status sensors tag a failed run with why it failed and overwrite the reason a re-execution copies
    from its parent; a tick they missed (the daemon down when the run ended) left a failed run untagged, or a
    re-execution showing its parent's reason. The reconcile pass writes what they would have, once."""
    from hive_assets.defs.monitoring.sensors import reconcile_failure_tags

    store, instance = env
    monkeypatch.delenv(FIXED, raising=False)
    monkeypatch.delenv(REFUSED, raising=False)
    untagged = run(instance, broken)  # its FAILURE tick missed
    first = dg.execute_job(dg.reconstructable(flaky_retrain), instance, tags=TAGS)
    trigger_failed(context(trigger_failed.name, first, instance, failure=True))
    parents = "flaky_training: RuntimeError: training diverged"
    monkeypatch.setenv(REFUSED, "1")
    refused = reexecute_from_failure(instance, first.run_id)  # failed for another reason; its tick missed
    monkeypatch.delenv(REFUSED)
    monkeypatch.setenv(FIXED, "1")
    fixed = reexecute_from_failure(instance, first.run_id)  # succeeded; its ticks missed

    def tag(result):
        return instance.get_run_by_id(result.run_id).tags.get(FAILURE_TAG)

    assert (tag(untagged), tag(refused), tag(fixed)) == (None, parents, parents)
    jobs = (untagged.dagster_run.job_name, "flaky_retrain")
    assert sorted(reconcile_failure_tags(instance, job_names=jobs)) == sorted(
        [untagged.run_id, refused.run_id, fixed.run_id])
    assert tag(untagged) == "broken: RuntimeError: training diverged"  # the sensor's words for it (above)
    assert tag(refused).endswith("the training lease of business is held by another run")
    assert (tag(fixed), tag(first)) == (NO_FAILURE, parents)
    assert reconcile_failure_tags(instance, job_names=jobs) == []  # once
    # a re-execution that failed again for its parent's reason keeps it, and is not rewritten
    monkeypatch.delenv(FIXED)
    again = reexecute_from_failure(instance, first.run_id)
    assert not again.success and tag(again) == parents
    assert reconcile_failure_tags(instance, job_names=jobs) == [] and tag(again) == parents


def test_a_run_whose_process_was_killed_says_so(env):
    """A retrain's run process SIGKILLed under `dagster dev`: the code server records the crash as an engine event
    (Dagster's own words, made here by its own function) and fails the run "from outside the execution context",
    which is all the Runs list, the trigger document and `hive status` said."""
    from dagster._utils import get_run_crash_explanation

    from hive_assets.defs.monitoring.sensors import reconcile_failure_tags, run_failure_cause

    _store, instance = env
    result = run(instance, validation_report)
    killed = instance.add_run(result.dagster_run.with_status(dg.DagsterRunStatus.STARTED)._replace(
        run_id="killed-run-0001"))
    instance.report_engine_event(get_run_crash_explanation(prefix=f"Run execution process for {killed.run_id}",
                                                           exit_code=-9), killed)
    instance.report_run_failed(killed)
    said = f"Run execution process for {killed.run_id} was terminated by signal 9 (SIGKILL)"
    assert run_failure_cause(instance, killed.run_id) == said
    assert reconcile_failure_tags(instance, job_names=(killed.job_name,)) == [killed.run_id]
    assert instance.get_run_by_id(killed.run_id).tags[FAILURE_TAG] == said


def test_the_reconcile_sensor_tags_a_failed_run_of_any_job_with_why(env):
    """The run-status sensors follow retrain_specialist only: a failed rollback, A/B start or review refresh said
    "Failure" in the Runs list and nothing more. The reconcile sensor tags every job's failed runs."""
    from dagster._core.storage.dagster_run import DagsterRun

    from hive_assets.defs import build_defs
    from hive_assets.defs.monitoring.sensors import trigger_reconcile

    _store, instance = env
    failed = instance.add_run(DagsterRun(job_name="rollback_champion", run_id="rollback-run-0001",
                                         status=dg.DagsterRunStatus.STARTED))
    instance.report_run_failed(failed, message="behavior-evaluator: no previous champion in the ledger")
    other = instance.add_run(DagsterRun(job_name="not_a_job_of_this_code_location", run_id="other-run-0001",
                                        status=dg.DagsterRunStatus.STARTED))
    instance.report_run_failed(other, message="not ours")
    ctx = dg.build_sensor_context(instance=instance, definitions=build_defs(),
                                  resources={"document_store": DocumentStoreResource()})
    trigger_reconcile(ctx)
    assert instance.get_run_by_id(failed.run_id).tags[FAILURE_TAG] == \
        "behavior-evaluator: no previous champion in the ledger"
    assert FAILURE_TAG not in instance.get_run_by_id(other.run_id).tags
