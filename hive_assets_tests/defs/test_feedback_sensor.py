"""The feedback sensor in Dagster's testing style: `build_sensor_context` with a real instance and the
definitions, the store under HIVE_HOME, trainings seeded as runless materializations of trained_model."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun

from hive_assets.cli._train import TRAIN_SELECTION
from hive_assets.data import SQLiteStore, to_utc
from hive_assets.defs import build_defs
from hive_assets.defs.monitoring.sensors import (
    REASON_TAG, TRIGGER_TAG, TRUST_POLICY, feedback_retraining_sensor, last_training,
)
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.simulator import simulate
from hive_assets_tests.defs.previews import preview_then_tick_and_tick_alone
from hive_assets.monitoring import (
    REACHES_REGISTRY, SpecialistCursor, decode_cursor, encode_cursor, trusted_feedback_count,
)

THRESHOLD = 100


@pytest.fixture
def env(hive_home, monkeypatch):
    monkeypatch.setenv("RETRAINING_FEEDBACK_THRESHOLD", str(THRESHOLD))
    monkeypatch.delenv("RETRAINING_COOLDOWN_HOURS", raising=False)
    store = SQLiteStore(hive_home / "store.sqlite")
    with dg.instance_for_test() as instance:
        yield store, instance, build_defs()


def add_feedback(store, specialist: str, n: int, *, at: datetime | None = None, source: str = "human_expert",
                 meta: dict | None = None) -> None:
    at = at or datetime.now(timezone.utc)
    store.upsert_many("specialist_feedback", [
        {"feedback_id": f"fb-{uuid.uuid4().hex}", "opinion_id": f"op-{i}", "specialist_type": specialist,
         "human_recommendation": "approve", "human_rating": 0.9, "submitted_at": at + timedelta(milliseconds=i),
         "feedback_source": source, "metadata": meta or {}} for i in range(n)])


def trained(instance, specialist: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization("trained_model", partition=specialist))


def tick(instance, defs, cursor=None):
    ctx = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor,
                                  resources={"document_store": DocumentStoreResource(), "mlflow": MlflowResource()})
    return feedback_retraining_sensor.evaluate_tick(ctx)


def counts(result) -> dict[str, int]:
    return {e.partition: e.metadata["trusted_since_training"].value for e in result.asset_events}


def test_below_threshold_requests_nothing_and_reports_the_counts(env):
    store, instance, defs = env
    add_feedback(store, "business", THRESHOLD - 1)
    add_feedback(store, "business", 30, meta={"auto_generated": True})  # untrusted: not counted
    add_feedback(store, "business", 30, source="synthetic_backfill")
    result = tick(instance, defs)
    assert result.run_requests == []
    assert counts(result) == {"business": 99, "technical": 0, "behavior": 0, "evolution": 0, "architecture": 0}
    assert "99 trusted feedback since the last training < threshold 100" in result.skip_message
    assert store.count("retraining_triggers") == 0


def test_at_threshold_requests_that_partition_and_writes_a_pending_trigger(env, monkeypatch):
    store, instance, defs = env
    monkeypatch.setenv("RETRAINING_COOLDOWN_HOURS", "0.0001")  # 0.36 s: the trainings below are past it
    for s in ("business", "technical", "behavior", "evolution", "architecture"):
        trained(instance, s)
    time.sleep(0.5)
    add_feedback(store, "technical", THRESHOLD)
    add_feedback(store, "business", 50)
    result = tick(instance, defs)
    [request] = result.run_requests
    assert request.partition_key == "technical"
    assert request.job_name in (None, "retrain_specialist")
    assert request.run_key.startswith("feedback:technical:trained-") and ":x1:" in request.run_key
    assert request.tags[TRIGGER_TAG] == request.run_key and request.tags[REASON_TAG] == "feedback"
    doc = store.find_one("retraining_triggers", {"trigger_id": request.run_key})
    assert (doc["status"], doc["reason"], doc["specialist_type"], doc["feedback_count"]) == (
        "pending", "feedback", "technical", THRESHOLD)
    assert counts(result) == {"business": 50, "technical": 100, "behavior": 0, "evolution": 0, "architecture": 0}


def test_feedback_before_the_last_training_does_not_count(env):
    store, instance, defs = env
    add_feedback(store, "business", 150, at=datetime.now(timezone.utc) - timedelta(minutes=5))
    trained(instance, "business")  # after that feedback
    add_feedback(store, "business", 10)
    result = tick(instance, defs)
    assert result.run_requests == [] and counts(result)["business"] == 10


def test_cooldown_after_a_request_then_fires_once_it_is_over(env):
    store, instance, defs = env
    add_feedback(store, "evolution", 120)
    now = datetime.now(timezone.utc)
    recent = encode_cursor({"evolution": SpecialistCursor(last_count=120, last_request_at=now - timedelta(hours=3))})
    result = tick(instance, defs, recent)
    assert result.run_requests == []
    assert "evolution: 120 >= 100 trusted feedback, but a run requested at" in result.skip_message
    old = encode_cursor({"evolution": SpecialistCursor(last_count=120, last_request_at=now - timedelta(hours=25))})
    assert [r.partition_key for r in tick(instance, defs, old).run_requests] == ["evolution"]


def test_a_training_inside_the_cooldown_blocks_too(env, monkeypatch):
    store, instance, defs = env
    trained(instance, "behavior")
    add_feedback(store, "behavior", 100)
    assert tick(instance, defs).run_requests == []
    monkeypatch.setenv("RETRAINING_COOLDOWN_HOURS", "0.0001")  # 0.36 s
    time.sleep(0.5)
    assert [r.partition_key for r in tick(instance, defs).run_requests] == ["behavior"]


def test_cursor_round_trip_and_observations_only_on_change(env):
    store, instance, defs = env
    add_feedback(store, "business", 10)
    first = tick(instance, defs)
    state = decode_cursor(first.cursor)
    assert {s: c.last_count for s, c in state.items()} == {
        "business": 10, "technical": 0, "behavior": 0, "evolution": 0, "architecture": 0}
    assert json.loads(first.cursor)["v"] == 1
    second = tick(instance, defs, first.cursor)
    assert second.asset_events == []  # nothing changed: nothing recorded
    assert decode_cursor(second.cursor) == state
    add_feedback(store, "technical", 3)
    third = tick(instance, defs, second.cursor)
    assert counts(third) == {"technical": 3}


def test_two_specialists_at_once(env):
    store, instance, defs = env
    add_feedback(store, "business", 100)
    add_feedback(store, "architecture", 250)
    result = tick(instance, defs)
    by_partition = {r.partition_key: r.run_key for r in result.run_requests}
    assert set(by_partition) == {"business", "architecture"}
    assert ":x2:" in by_partition["architecture"] and ":x1:" in by_partition["business"]
    state = decode_cursor(result.cursor)
    assert state["business"].last_run_key == by_partition["business"]
    assert state["architecture"].last_request_at is not None and state["technical"].last_request_at is None
    assert store.count("retraining_triggers", {"status": "pending"}) == 2


def test_repeated_ticks_produce_the_same_run_keys(env):
    store, instance, defs = env
    add_feedback(store, "business", 130)
    keys = [[r.run_key for r in tick(instance, defs).run_requests] for _ in range(3)]
    assert keys[0] == keys[1] == keys[2] and len(keys[0]) == 1
    assert store.count("retraining_triggers") == 1  # the pending document is written once


def test_no_request_while_a_run_of_that_specialist_is_in_flight(env):
    store, instance, defs = env
    add_feedback(store, "business", 100)
    instance.add_run(DagsterRun(job_name="retrain_specialist", run_id=str(uuid.uuid4()),
                                status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": "business"}))
    result = tick(instance, defs)
    assert result.run_requests == [] and "in flight" in result.skip_message


@pytest.mark.parametrize("job_name, selection", [
    ("__ephemeral_asset_job__", frozenset()),  # `hive train`: dg.materialize with a selection records none
    ("__ASSET_JOB", frozenset({dg.AssetKey("trained_model")})),  # the UI, trained_model alone
])
def test_no_request_while_another_run_taking_the_training_lease_is_in_flight(env, job_name, selection):
    """A `hive train` or a UI materialization of the partition holds its training lease: a retraining launched
    meanwhile would fail on it ("another run of business holds it"), so the sensor holds, as for a retraining.
    A run that takes another lease (an A/B look: the operator lease) is no bar."""
    store, instance, defs = env
    add_feedback(store, "business", THRESHOLD)
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name=job_name, run_id=run_id, status=dg.DagsterRunStatus.STARTED,
                                asset_selection=selection, tags={"dagster/partition": "business"}))
    instance.add_run(DagsterRun(job_name="ab_test_check", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED,
                                tags={"dagster/partition": "technical"}))
    result = tick(instance, defs)
    assert result.run_requests == []
    assert f"business: {THRESHOLD} >= {THRESHOLD}, run {run_id} in flight" in result.skip_message
    assert decode_cursor(result.cursor)["business"].last_run_key is None
    assert store.count("retraining_triggers") == 0
    add_feedback(store, "technical", THRESHOLD)
    assert [r.partition_key for r in tick(instance, defs, result.cursor).run_requests] == ["technical"]


def test_a_training_that_registers_nothing_leaves_the_count_running(env, monkeypatch):
    """A trained_model materialization stamped as not reaching the registry (`hive train`, a partial UI
    materialization) is no last training: the count, the cooldown and the run key stay on the last one that
    could register. One stamped as reaching it resets the count; an unstamped one (written before the stamp
    existed) is a last training, as it always was."""
    store, instance, defs = env
    monkeypatch.setenv("RETRAINING_COOLDOWN_HOURS", "0.0001")  # 0.36 s: the first training is past it
    trained(instance, "business")  # unstamped
    marker = last_training(instance, "business")[1]
    time.sleep(0.5)
    add_feedback(store, "business", THRESHOLD + 20)

    def reported(reaches: bool, at: datetime | None = None) -> None:
        instance.report_runless_asset_event(dg.AssetMaterialization("trained_model", partition="business", metadata={
            "trained_at": dg.MetadataValue.timestamp(at or datetime.now(timezone.utc)), REACHES_REGISTRY: reaches}))

    for _ in range(3):  # more than the one record a tick reads first
        reported(False)
    assert last_training(instance, "business")[1] == marker
    assert last_training(instance, "business", reaching_registry=False)[1] > marker  # any training: the latest
    result = tick(instance, defs)
    [request] = result.run_requests
    assert counts(result)["business"] == THRESHOLD + 20
    assert request.run_key.startswith(f"feedback:business:trained-{marker}:x1:")
    assert store.find_one("retraining_triggers", {"trigger_id": request.run_key})["feedback_count"] == THRESHOLD + 20
    # a training that could register: the count starts again (stamped after the last feedback, which
    # add_feedback spreads over the next THRESHOLD + 20 ms: on a fast machine some were still to come)
    reported(True, at=datetime.now(timezone.utc) + timedelta(milliseconds=THRESHOLD + 1000))
    after = tick(instance, defs, result.cursor)
    assert after.run_requests == [] and counts(after)["business"] == 0
    assert last_training(instance, "business")[1] > marker


def test_a_hive_train_run_after_the_feedback_piled_up_leaves_the_retraining_requested(env, hive_home, monkeypatch):
    """The audit's repro: trusted feedback past the threshold, then an operator's `hive train` (its selection,
    a real run in the instance, the real definitions): that run registers nothing, so its labels reach no
    served model and the sensor still requests the retraining, with the whole count, from the same training."""
    store, instance, defs = env
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{hive_home / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "train-vs-feedback")
    simulate(store, plans=2500, days=45, seed=21, now=datetime.now(timezone.utc) - timedelta(minutes=1),
             specialists=["business"])
    piled = trusted_feedback_count(store, "business", None, TRUST_POLICY)
    assert piled >= THRESHOLD
    before = tick(instance, defs)
    [request] = before.run_requests
    assert counts(before)["business"] == piled and request.run_key.startswith("feedback:business:trained-never:")

    result = dg.materialize(list(defs.assets), selection=TRAIN_SELECTION, partition_key="business",
                            resources=defs.resources, instance=instance)  # what `hive train` runs
    [trained_event] = [e.event_specific_data.materialization for e in result.all_events
                       if e.event_type_value == "ASSET_MATERIALIZATION"
                       and e.event_specific_data.materialization.asset_key.path == ["trained_model"]]
    assert trained_event.metadata[REACHES_REGISTRY].value is False
    assert last_training(instance, "business") == (None, None)

    after = tick(instance, defs)  # a fresh cursor: the request is made again, same key
    assert [r.run_key for r in after.run_requests] == [request.run_key]
    assert counts(after)["business"] == piled


def test_a_failed_run_then_new_feedback_gives_a_new_request(env):
    store, instance, defs = env
    add_feedback(store, "business", 100)
    first = tick(instance, defs)
    [req] = first.run_requests
    # that run failed: no training happened, its run key is used up in the daemon
    instance.add_run(DagsterRun(job_name="retrain_specialist", run_id=str(uuid.uuid4()),
                                status=dg.DagsterRunStatus.FAILURE,
                                tags={"dagster/partition": "business", "dagster/run_key": req.run_key, **req.tags}))
    add_feedback(store, "business", 100)
    # within the cooldown the rule waits, whatever the feedback
    assert tick(instance, defs, first.cursor).run_requests == []
    # after it, the new request has a key the failed run did not use
    state = decode_cursor(first.cursor)
    state["business"] = SpecialistCursor(last_count=100, last_request_at=state["business"].last_request_at
                                         - timedelta(hours=24, seconds=1), last_run_key=req.run_key)
    [again] = tick(instance, defs, encode_cursor(state)).run_requests
    assert again.partition_key == "business" and again.run_key != req.run_key and ":x2:" in again.run_key


@pytest.mark.parametrize("status, attempt", [(dg.DagsterRunStatus.FAILURE, ":retry-1"),
                                             (dg.DagsterRunStatus.CANCELED, ""),
                                             (dg.DagsterRunStatus.SUCCESS, ""), (dg.DagsterRunStatus.STARTED, "")])
def test_only_a_failed_run_gives_its_trigger_a_next_attempt(env, status, attempt):
    """A canceled retrain is not retried (an operator meant it; a drift trigger would relaunch it at the next
    tick), as the review queue's refresh: the trigger's next chance is its next key."""
    from hive_assets.defs.monitoring.sensors import trigger_attempt

    _store, instance, _defs = env
    key = "drift:business:v2:t123"
    instance.add_run(DagsterRun(job_name="retrain_specialist", run_id=str(uuid.uuid4()), status=status,
                                tags={"dagster/partition": "business", "dagster/run_key": key, TRIGGER_TAG: key}))
    assert trigger_attempt(instance, key) == key + attempt


def test_store_unavailable_skips_without_the_credential(env):
    _, instance, defs = env
    ctx = dg.build_sensor_context(instance=instance, definitions=defs, resources={
        "document_store": DocumentStoreResource(mongodb_uri="mongodb://hive:s3cret-pw@127.0.0.1:9/?serverSelectionTimeoutMS=300"),
        "mlflow": MlflowResource()})
    result = feedback_retraining_sensor.evaluate_tick(ctx)
    assert result.run_requests == []
    assert result.skip_message.startswith("document store unavailable")
    assert "127.0.0.1:9" in result.skip_message and "s3cret" not in result.skip_message


def test_no_request_while_an_ab_test_of_that_specialist_runs_then_it_fires(env):
    from hive_assets.rollout import open_test

    store, instance, defs = env
    add_feedback(store, "business", THRESHOLD + 5)
    add_feedback(store, "technical", THRESHOLD + 5)
    test, _ = open_test(store, "business", "1", "2", 10.0)
    result = tick(instance, defs)
    assert [r.partition_key for r in result.run_requests] == ["technical"]  # the other one is not held
    assert store.count("retraining_triggers", {"specialist_type": "business"}) == 0
    store.update_one("ab_tests", {"test_id": test["test_id"]}, {"status": "promoted"})
    result = tick(instance, defs, result.cursor)  # technical: requested last tick, now in its cooldown
    assert [r.partition_key for r in result.run_requests] == ["business"]


def test_a_simulated_home_ignores_a_training_reported_without_the_platform_clock(env, monkeypatch):
    """A trained_model materialization reported by hand (the UI) carries no `trained_at`: its event time is
    today's wall time, which on a simulated home would stop the count and hold the cooldown until the
    simulated clock reaches today. The last training stays the one the platform clock stamped."""
    store, instance, defs = env
    simulated = datetime(2026, 1, 5, tzinfo=timezone.utc)
    instance.report_runless_asset_event(dg.AssetMaterialization(
        "trained_model", partition="evolution", metadata={"trained_at": dg.MetadataValue.timestamp(simulated)}))
    trained(instance, "evolution")  # reported by hand: the event's wall time only
    add_feedback(store, "evolution", THRESHOLD, at=simulated + timedelta(hours=2))
    monkeypatch.setenv("HIVE_SIMULATED_NOW", (simulated + timedelta(hours=25)).isoformat())
    assert last_training(instance, "evolution")[0] == simulated
    result = tick(instance, defs)
    assert counts(result)["evolution"] == THRESHOLD
    assert [r.partition_key for r in result.run_requests] == ["evolution"]
    monkeypatch.delenv("HIVE_SIMULATED_NOW")  # a wall-clock home: the event's time is the platform's
    assert last_training(instance, "evolution")[0] > datetime.now(timezone.utc) - timedelta(minutes=5)


def test_the_platform_clock_drives_the_count_and_the_last_training(env, monkeypatch):
    """Under `hive loop` the clock is simulated: the last training is the `trained_at` its materialization
    recorded (not the event's wall time), and feedback is counted up to the simulated now."""
    store, instance, defs = env
    simulated = datetime(2026, 1, 5, tzinfo=timezone.utc)
    instance.report_runless_asset_event(dg.AssetMaterialization(
        "trained_model", partition="evolution", metadata={"trained_at": dg.MetadataValue.timestamp(simulated)}))
    add_feedback(store, "evolution", 40, at=simulated - timedelta(hours=1))   # before that training
    add_feedback(store, "evolution", THRESHOLD, at=simulated + timedelta(hours=2))
    add_feedback(store, "evolution", 7, at=simulated + timedelta(hours=30))   # still in the future
    monkeypatch.setenv("HIVE_SIMULATED_NOW", (simulated + timedelta(hours=25)).isoformat())
    result = tick(instance, defs)
    assert counts(result)["evolution"] == THRESHOLD
    [request] = result.run_requests
    assert request.partition_key == "evolution" and "trained-" in request.run_key
    doc = store.find_one("retraining_triggers", {"trigger_id": request.run_key})
    assert to_utc(doc["triggered_at"]) == simulated + timedelta(hours=25)


@pytest.mark.parametrize("gap", [timedelta(0), timedelta(minutes=10), timedelta(hours=2)],
                         ids=["standing", "same-window", "next-window"])
def test_a_preview_then_the_tick_leaves_what_the_tick_alone_does(hive_home, monkeypatch, gap):
    """The UI's "Preview tick result" evaluates the sensor (a trigger fires) and keeps nothing of its result. The
    real tick after it, from the same cursor, gives the same requests, cursor, observations and trigger documents
    as that tick alone. Before, the preview's `pending` trigger stayed: with the preview's time and count when the
    tick's key was the same, beside the tick's (a trigger no run would take up) when the clock had moved into the
    next cooldown window (the preview at 23:00, the tick at 01:00)."""
    monkeypatch.setenv("RETRAINING_FEEDBACK_THRESHOLD", str(THRESHOLD))
    monkeypatch.delenv("RETRAINING_COOLDOWN_HOURS", raising=False)
    at = datetime.now(timezone.utc).replace(hour=1, minute=0, second=0, microsecond=0)
    cursor = encode_cursor({"business": SpecialistCursor(last_count=THRESHOLD - 1)})
    def fill(store):
        store.upsert_many("specialist_feedback", [
            {"feedback_id": f"fb-{i}", "opinion_id": f"op-{i}", "specialist_type": "business",
             "human_recommendation": "approve", "human_rating": 0.9, "feedback_source": "human_expert",
             "submitted_at": at - timedelta(hours=3, milliseconds=i), "metadata": {}} for i in range(THRESHOLD)])

    def outcome(result, store):
        return {"requests": [(r.run_key, r.partition_key, dict(r.tags)) for r in result.run_requests],
                "cursor": result.cursor, "events": counts(result),
                "triggers": sorted(store.find("retraining_triggers"), key=lambda d: d["trigger_id"])}

    previewed, alone = preview_then_tick_and_tick_alone(
        hive_home, monkeypatch, at, gap, fill=fill, evaluate=lambda instance, defs: tick(instance, defs, cursor),
        outcome=outcome)
    assert [r[0] for r in alone["requests"]] == [t["trigger_id"] for t in alone["triggers"]]
    assert [part for part in alone if previewed[part] != alone[part]] == []


def test_no_request_while_the_model_registry_is_down_then_it_fires(env, monkeypatch):
    """A retraining requested while MLflow was down collected and rewrote the partition's outputs, failed at
    training (after its retries) and spent one of the trigger's three attempts; a longer outage spent them
    all. Now the tick says why it waits, records no trigger, and the next tick with MLflow back requests."""
    from hive_assets_tests.conftest import free_port

    store, instance, defs = env
    add_feedback(store, "business", THRESHOLD)
    down = MlflowResource(tracking_uri=f"http://hive:s3cret-pw@127.0.0.1:{free_port()}")  # refused
    ctx = dg.build_sensor_context(instance=instance, definitions=defs,
                                  resources={"document_store": DocumentStoreResource(), "mlflow": down})
    waiting = feedback_retraining_sensor.evaluate_tick(ctx)
    assert waiting.run_requests == [] and store.count("retraining_triggers") == 0
    assert "business: 100 trusted feedback" in waiting.skip_message
    assert "not requested, model registry unavailable (MLflow at http://hive:***@127.0.0.1:" in waiting.skip_message
    assert "s3cret-pw" not in waiting.skip_message
    assert decode_cursor(waiting.cursor)["business"].last_request_at is None  # no cooldown started
    [request] = tick(instance, defs, waiting.cursor).run_requests  # MLflow back (the home's own)
    assert request.partition_key == "business" and ":x1" in request.run_key  # the trigger's first attempt
    assert store.count("retraining_triggers", {"trigger_id": request.run_key}) == 1


def test_a_backfill_s_training_counts_from_the_end_of_its_data(env):
    """A retraining launched with `as_of` a month back (an operator's experiment in the Launchpad) reset the
    feedback count and started the cooldown as if its model had seen today's feedback: the next retraining
    waited for a whole threshold more. The count starts where its data ended (`data_until`)."""
    store, instance, defs = env
    now = datetime.now(timezone.utc)
    add_feedback(store, "business", THRESHOLD, at=now - timedelta(days=10))
    instance.report_runless_asset_event(dg.AssetMaterialization("trained_model", partition="business", metadata={
        "trained_at": dg.MetadataValue.timestamp(now - timedelta(hours=1)),
        "data_until": dg.MetadataValue.timestamp(now - timedelta(days=30))}))
    trained_at, _ = last_training(instance, "business")
    assert abs(trained_at - (now - timedelta(days=30))) < timedelta(seconds=1)
    result = tick(instance, defs)
    assert counts(result)["business"] == THRESHOLD
    [request] = result.run_requests  # no cooldown: the training's data ended 30 days ago
    assert request.partition_key == "business"
    # an ordinary training: its data end is its training time, or a moment before it
    instance.report_runless_asset_event(dg.AssetMaterialization("trained_model", partition="business", metadata={
        "trained_at": dg.MetadataValue.timestamp(now), "data_until": dg.MetadataValue.timestamp(now)}))
    assert counts(tick(instance, defs, result.cursor))["business"] == 0


def test_a_collection_that_could_not_train_holds_the_trigger_until_more_feedback_came(env, monkeypatch):
    """A specialist with 100-299 labels fired a retraining every cooldown, each failing the same `trainable`
    check on the same labels (production's first weeks: about 200 feedback per specialist). After a real run of
    the graph that stopped there, the sensor holds until a threshold of trusted feedback came after its window."""
    store, instance, defs = env
    monkeypatch.setenv("RETRAINING_COOLDOWN_HOURS", "0.0001")  # 0.36 s: only the hold can stop a request
    simulate(store, plans=150, days=10, seed=3, now=datetime.now(timezone.utc) - timedelta(minutes=1),
             specialists=("behavior",))
    labelled = trusted_feedback_count(store, "behavior", None, TRUST_POLICY)
    assert THRESHOLD <= labelled < 300  # above the trigger, under the trainable check's 300
    result = dg.materialize(list(defs.assets), selection=TRAIN_SELECTION, partition_key="behavior", instance=instance,
                            resources={"document_store": DocumentStoreResource(), "mlflow": MlflowResource(),
                                       "platform": PlatformSettings()}, raise_on_error=False)
    assert not result.success and not result.asset_materializations_for_node("trained_model")
    time.sleep(0.5)

    held = tick(instance, defs)
    assert held.run_requests == []
    [note] = [n for n in held.skip_message.split("; ") if n.startswith("behavior:")]
    assert note.startswith(f"behavior: {labelled} >= 100 trusted feedback since the last training, but the data "
                           "collected up to ")
    rows = result.asset_materializations_for_node("enhanced_features")[0].metadata["rows"].value
    assert f"could not train ({rows} labelled rows < min_training_samples 300" in note
    assert note.endswith("asked again once 100 more trusted feedback came after it (0 so far)")
    assert store.count("retraining_triggers") == 0
    add_feedback(store, "behavior", THRESHOLD - 1)
    assert tick(instance, defs, held.cursor).run_requests == []
    add_feedback(store, "behavior", 1)
    [request] = tick(instance, defs, held.cursor).run_requests
    assert request.partition_key == "behavior" and f":x{(labelled + THRESHOLD) // THRESHOLD}:" in request.run_key
    # a training after that collection ends the hold: the count starts again from it
    trained(instance, "behavior")
    time.sleep(0.5)
    add_feedback(store, "behavior", THRESHOLD)
    assert [r.partition_key for r in tick(instance, defs).run_requests] == ["behavior"]
