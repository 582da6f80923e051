"""The drift sensor with `build_sensor_context`: a real champion (MLflow, SQLite backend), the store under
HIVE_HOME, windows simulated with and without drift (fixed seeds)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun

from hive_assets import clock
from hive_assets.data import SQLiteStore, to_utc
from hive_assets.defs import build_defs
from hive_assets.defs.monitoring.sensors import REASON_TAG, TRIGGER_TAG, drift_observation, drift_retraining_sensor
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource
from hive_assets.monitoring import SpecialistCursor, decode_cursor, encode_cursor, update_trigger_status
from hive_assets.simulator import simulate
from hive_assets_tests.defs.previews import preview_then_tick_and_tick_alone
from hive_assets_tests.monitoring.champion import register_champion, train_small_model


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    _, version = register_champion(uri, "business", train_small_model("business", datetime.now(timezone.utc)
                                                                     - timedelta(days=30)))
    return uri, version.version


@pytest.fixture
def env(hive_home, tracking):
    with dg.instance_for_test() as instance:
        yield SQLiteStore(hive_home / "store.sqlite"), instance, build_defs(), tracking


def tick(instance, defs, uri, cursor=None, store_resource=None):
    ctx = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor, resources={
        "document_store": store_resource or DocumentStoreResource(), "mlflow": MlflowResource(tracking_uri=uri)})
    return drift_retraining_sensor.evaluate_tick(ctx)


def test_no_drift_records_the_check_and_requests_nothing(env):
    store, instance, defs, (uri, version) = env
    simulate(store, plans=500, days=0.5, seed=31, now=datetime.now(timezone.utc), feedback_rate=0.0)
    result = tick(instance, defs, uri)
    assert result.run_requests == []
    [doc] = store.find("drift_monitoring", {"specialist_type": "business"})
    assert (doc["decision"], doc["model_version"]) == ("no_drift", str(version)) and doc["window_size"] >= 450
    assert store.count("drift_monitoring") == 1  # the others have no champion: reported, not recorded
    assert "technical: no champion version" in result.skip_message
    assert decode_cursor(result.cursor)["business"].last_check_at is not None


def test_drift_requests_a_run_keyed_by_version_and_interval_and_writes_the_trigger(env, monkeypatch):
    store, instance, defs, (uri, version) = env
    at = datetime.now(timezone.utc)
    simulate(store, plans=500, days=0.5, seed=32, now=at, drift=1.0, feedback_rate=0.0)
    monkeypatch.setenv("HIVE_SIMULATED_NOW", at.isoformat())
    result = tick(instance, defs, uri)
    [request] = result.run_requests
    assert request.partition_key == "business"
    assert request.run_key.startswith(f"drift:business:v{version}:t")
    assert request.tags[TRIGGER_TAG] == request.run_key and request.tags[REASON_TAG] == "drift"
    trigger = store.find_one("retraining_triggers", {"trigger_id": request.run_key})
    check = store.find_one("drift_monitoring", {"specialist_type": "business"})
    assert trigger["status"] == "pending" and trigger["reason"] == "drift"
    assert trigger["drift_score"] == pytest.approx(check["drift_score"]) and check["decision"] == "drift"
    assert check["run_key"] == request.run_key and check["retraining"]["action"] == "requested"
    # while the platform clock stands still, a tick (even with a reset cursor) checks nothing; the request no run
    # took up yet (none was launched: a preview's result committed, cursor only) is made again, same key
    reset = encode_cursor({"business": SpecialistCursor()})
    still = tick(instance, defs, uri, reset)
    assert [r.run_key for r in still.run_requests] == [request.run_key]
    assert store.count("drift_monitoring", {"specialist_type": "business"}) == 1
    # once a run took it up (its trigger running, with the run id), nothing is requested again
    update_trigger_status(store, request.run_key, "running", run_id="run-1", at=at)
    assert tick(instance, defs, uri, reset).run_requests == []
    # an interval later, inside the cooldown: the check is recorded, nothing requested
    monkeypatch.setenv("HIVE_SIMULATED_NOW", (at + timedelta(hours=1)).isoformat())
    again = tick(instance, defs, uri, result.cursor)
    assert again.run_requests == [] and "cooldown" in again.skip_message
    assert store.count("drift_monitoring", {"specialist_type": "business"}) == 2
    # the held check says so, and carries no run key (no trigger was written for it)
    held = store.find_one("drift_monitoring", {"specialist_type": "business"}, sort=[("checked_at", -1)])
    assert held["decision"] == "drift" and held["run_key"] is None
    assert held["retraining"]["action"] == "held" and "cooldown" in held["retraining"]["reason"]
    assert store.count("retraining_triggers") == 1


def test_store_unavailable_skips(env):
    _, instance, defs, (uri, _) = env
    down = DocumentStoreResource(mongodb_uri="mongodb://hive:s3cret-pw@127.0.0.1:9/?serverSelectionTimeoutMS=300")
    result = tick(instance, defs, uri, store_resource=down)
    assert result.run_requests == [] and result.skip_message.startswith("document store unavailable")
    assert "s3cret" not in result.skip_message


def test_drift_during_a_running_ab_test_is_recorded_but_retrains_nothing(env):
    from hive_assets.rollout import open_test

    store, instance, defs, (uri, version) = env
    simulate(store, plans=500, days=0.5, seed=33, now=datetime.now(timezone.utc), drift=1.0, feedback_rate=0.0)
    test, _ = open_test(store, "business", str(version), "99", 10.0)
    result = tick(instance, defs, uri)
    assert result.run_requests == [] and f"A/B test {test['test_id']} running" in result.skip_message
    doc = store.find_one("drift_monitoring", {"specialist_type": "business"})
    assert doc["decision"] == "drift" and store.count("retraining_triggers") == 0
    # held, and why; no run key that names no trigger (issue 24)
    assert doc["run_key"] is None
    assert doc["retraining"] == {"action": "held", "reason": f"A/B test {test['test_id']} running: retraining waits "
                                                            f"for its verdict"}


def test_drift_while_a_hive_train_run_holds_the_training_lease_is_held(env):
    """A `hive train` of business in flight (dg.materialize with a selection: the run records none) holds
    the partition's training lease: a retraining requested now would fail on it, so the drift is held."""
    store, instance, defs, (uri, _) = env
    simulate(store, plans=500, days=0.5, seed=34, now=datetime.now(timezone.utc), drift=1.0, feedback_rate=0.0)
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name="__ephemeral_asset_job__", run_id=run_id, asset_selection=frozenset(),
                                status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": "business"}))
    result = tick(instance, defs, uri)
    assert result.run_requests == [] and f"held: run {run_id} in flight" in result.skip_message
    doc = store.find_one("drift_monitoring", {"specialist_type": "business"})
    assert doc["decision"] == "drift" and doc["run_key"] is None and store.count("retraining_triggers") == 0
    assert doc["retraining"] == {"action": "held", "reason": f"run {run_id} in flight"}


def test_a_new_champion_is_observed_even_with_the_same_decision_and_score(env):
    """The drift observation the UI shows follows the champion: after a promotion whose first check has the
    same decision and score, the asset still showed the old version's check."""
    store, instance, defs, (uri, version) = env
    simulate(store, plans=500, days=0.5, seed=31, now=datetime.now(timezone.utc), feedback_rate=0.0)
    tick(instance, defs, uri)
    [doc] = store.find("drift_monitoring", {"specialist_type": "business"})
    shown = drift_observation(instance, "business", doc)
    assert shown is not None and shown.metadata["model_version"].value == str(version)
    assert shown.metadata["checked_at"].value == to_utc(doc["checked_at"]).isoformat()
    score = shown.metadata["drift_score"].value
    assert score == float(f"{doc['drift_score']:.4g}")  # 4 significant digits, as the UI shows numbers
    instance.report_runless_asset_event(shown)
    assert drift_observation(instance, "business", doc) is None  # the same check again: nothing new
    promoted = {**doc, "model_version": str(int(version) + 1), "check_id": doc["check_id"] + "-next"}
    again = drift_observation(instance, "business", promoted)
    assert again is not None and again.metadata["model_version"].value == str(int(version) + 1)
    instance.report_runless_asset_event(again)
    # the same check held by another test than the one on show (that one was closed since)
    held = {**promoted, "retraining": {"action": "held", "reason": "A/B test business_v9 running"}}
    shown_hold = drift_observation(instance, "business", held)
    assert shown_hold is not None and shown_hold.metadata["retraining"].value == "held: A/B test business_v9 running"


def outcome(result, store) -> dict:
    """What a tick leaves: its requests, cursor, skip message and observations, and the stored documents."""
    return {
        "requests": [(r.run_key, r.partition_key, dict(r.tags)) for r in result.run_requests],
        "cursor": result.cursor, "skipped": result.skip_message,
        "events": [(e.partition, {k: v.value for k, v in e.metadata.items() if k != "psi_by_feature"})
                   for e in result.asset_events],
        "triggers": sorted(store.find("retraining_triggers"), key=lambda d: d["trigger_id"]),
        "checks": sorted(store.find("drift_monitoring"), key=lambda d: d["check_id"]),
    }


@pytest.mark.parametrize("wall, gap", [(False, timedelta(0)), (False, timedelta(minutes=40)),
                                       (True, timedelta(seconds=20)), (True, timedelta(minutes=40))],
                         ids=["simulated-standing", "simulated-moved", "wall-same-interval", "wall-next-interval"])
def test_a_preview_then_the_tick_leaves_what_the_tick_alone_does(hive_home, tracking, monkeypatch, wall, gap):
    """The UI's "Preview tick result" evaluates the sensor (a drift check that requests a retrain) and keeps
    nothing of its result: no run, no cursor, no observation. The real tick after it, from the same cursor, gives
    the same requests, run keys, cursor, observations and stored documents as that tick alone: on a standing
    simulated clock, on one that moved (the preview at 11:30, the tick at 12:10: another interval), on the wall
    clock. Before, the preview's check made the tick wait an interval and request the preview's key again (no
    check, no observation, no request in the cursor), or left its check and a `pending` trigger no run took up."""
    uri, _ = tracking
    if wall:  # the wall clock, at instants the test chooses: HIVE_SIMULATED_NOW sets them, the mode stays "wall"
        monkeypatch.setattr(clock, "simulated", lambda: False)
    at = datetime.now(timezone.utc).replace(minute=10, second=0, microsecond=0)
    cursor = encode_cursor({"business": SpecialistCursor(last_check_at=at - timedelta(hours=3))})
    previewed, alone = preview_then_tick_and_tick_alone(
        hive_home, monkeypatch, at, gap,
        fill=lambda store: simulate(store, plans=500, days=0.5, seed=32, now=at - timedelta(hours=1), drift=1.0,
                                    feedback_rate=0.0),
        evaluate=lambda instance, defs: tick(instance, defs, uri, cursor), outcome=outcome)
    assert [r[0] for r in alone["requests"]] == [t["trigger_id"] for t in alone["triggers"]]
    assert alone["events"] and len(alone["checks"]) == 1
    assert [part for part in alone if previewed[part] != alone[part]] == []


def test_an_unreachable_registry_skips_in_one_line_without_the_password_and_writes_nothing(env, monkeypatch):
    """MLflow down: the check reached MLflow's client, which retried for a minute or more, then the evaluation
    failed with a traceback (the UI's preview waited, then showed the stack; audit, stop 51). One health
    request now says so in one line, without the URI's password; no check recorded, the cursor kept."""
    store, instance, defs, _ = env
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # without the fix: fail at once, not in minutes
    simulate(store, plans=300, days=0.5, seed=31, now=datetime.now(timezone.utc), feedback_rate=0.0)
    checked = datetime.now(timezone.utc) - timedelta(hours=3)
    cursor = encode_cursor({"business": SpecialistCursor(last_check_at=checked)})
    result = tick(instance, defs, "http://hive:s3cret-pw@127.0.0.1:1", cursor)
    assert result.run_requests == [] and result.cursor == cursor  # kept: the next tick checks as it would have
    message = result.skip_message
    assert message.startswith("model registry unavailable, no drift check: MLflow at http://hive:***@127.0.0.1:1 "
                              "unreachable (") and "\n" not in message and "s3cret" not in message
    assert store.count("drift_monitoring") == 0 and store.count("retraining_triggers") == 0
