"""The review_queue asset, its daily sensor and the simulator's reviewers, on a real champion (MLflow,
SQLite backend) and the store under HIVE_HOME; and the A/B tally's label filter."""

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from hive_assets.cli._dagster import failure_message
from hive_assets.config import SPECIALISTS
from hive_assets.data import SQLiteStore, TrustPolicy, to_utc
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.defs.review import refresh_review_queue, review_queue, review_queue_sensor
from hive_assets.review import ACTIVE, ANSWERED, COLLECTION, EXPIRED, RANDOM, open_queue
from hive_assets.rollout import arm_observations
from hive_assets.simulator import ServingLoop, simulate
from hive_assets_tests.monitoring.champion import register_champion, train_small_model

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    register_champion(uri, "business", train_small_model("business", NOW - timedelta(days=30), n_plans=600))
    return uri


def materialize(uri: str, budget: int):
    return dg.materialize([review_queue], partition_key="business", resources={
        "document_store": DocumentStoreResource(), "mlflow": MlflowResource(tracking_uri=uri),
        "platform": PlatformSettings()}, run_config={"ops": {"review_queue": {"config": {"daily_budget": budget}}}})


def test_sensor_asset_and_reviewers(hive_home, tracking, monkeypatch):
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    monkeypatch.setenv("REVIEW_QUEUE_DAILY_BUDGET", "10")
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=150, days=1, seed=5, now=NOW, feedback_rate=0.2, malformed_rate=0.0)
    # the sensor: one run a day per specialist, with the budget of the environment
    requests = review_queue_sensor(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(),
                                                           resources={"mlflow": MlflowResource()})).run_requests
    assert sorted(r.partition_key for r in requests) == sorted(["business", "technical", "behavior", "evolution",
                                                                "architecture"])
    assert {r.run_key for r in requests if r.partition_key == "business"} == {"review_queue:business:2026-05-04"}
    assert requests[0].run_config["ops"]["review_queue"]["config"]["daily_budget"] == 10

    result = materialize(tracking, 10)
    [event] = result.asset_materializations_for_node("review_queue")
    assert event.metadata["requested"].value == 10 and store.count(COLLECTION) == 10
    assert store.count(COLLECTION, {"selection": RANDOM}) == 2 and store.count(COLLECTION, {"selection": ACTIVE}) == 8
    # requested opinions are unlabelled ones of the window
    requested = [d["opinion_id"] for d in store.find(COLLECTION)]
    assert not store.count("specialist_feedback", {"opinion_id": {"$in": requested}})
    # the same day again: the budget is spent
    again = materialize(tracking, 10).asset_materializations_for_node("review_queue")[0]
    assert again.metadata["requested"].value == 0 and store.count(COLLECTION) == 10

    # the simulator's reviewers answer the queue first: 48 a day is 2 an hour, in queue order
    first_two = [d["opinion_id"] for d in open_queue(store, "business", NOW)][:2]
    world = ServingLoop(store, tracking, seed=1, feedback_rate=0.0, review_capacity=48)
    served = world.serve_hour(NOW + timedelta(hours=1), plans=10)
    assert served["feedback"] == 2
    answers = list(store.find("specialist_feedback", {"metadata.review_request_id": {"$exists": True}}))
    assert sorted(a["opinion_id"] for a in answers) == sorted(first_two)
    monkeypatch.setenv("HIVE_SIMULATED_NOW", (NOW + timedelta(hours=2)).isoformat())
    linked = materialize(tracking, 10).asset_materializations_for_node("review_queue")[0]
    assert linked.metadata["answered_since_last"].value == 2
    assert sorted(d["opinion_id"] for d in store.find(COLLECTION, {"status": ANSWERED})) == sorted(first_two)


def test_without_a_champion_the_refresh_still_links_answers_and_expires_requests(hive_home, tmp_path, monkeypatch):
    """No champion: nothing to score opinions with, so no request, but the answers and expiries of the requests
    made before move on as on every refresh (the asset returned before them)."""
    from hive_assets.registry import client_for

    uri = f"sqlite:///{tmp_path / 'empty-mlflow.db'}"
    client_for(uri).search_registered_models()  # an MLflow with no model at all
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    store = SQLiteStore(hive_home / "store.sqlite")
    expiring_requests(store, NOW - timedelta(hours=80))
    [event] = materialize(uri, 10).asset_materializations_for_node("review_queue")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta == {"requested": 0, "skipped": "no champion registered", "answered_since_last": 1,
                    "expired_since_last": 1, "open": 1}
    assert {d["opinion_id"]: d["status"] for d in store.find(COLLECTION)} == {
        "answered": ANSWERED, "unanswered": EXPIRED, "waiting": "open"}


def expiring_requests(store, made: datetime) -> None:
    """Requests made at `made`: one answered within its 72 h, one unanswered for 72 h, one waiting 100 h."""
    store.upsert_many(COLLECTION, [
        {"request_id": f"review:business:{op}", "opinion_id": op, "plan_id": f"p-{op}", "specialist_type": "business",
         "selection": ACTIVE, "rank": 1, "score": 1.0, "reason": "uncertainty", "requested_at": made,
         "expires_at": made + timedelta(hours=hours), "status": "open", "feedback_id": None, "answered_at": None}
        for op, hours in [("answered", 72), ("unanswered", 72), ("waiting", 100)]])
    store.upsert_many("specialist_feedback", [
        {"feedback_id": "fb-answered", "opinion_id": "answered", "plan_id": "p-answered", "specialist_type": "business",
         "human_recommendation": "approve", "human_rating": 0.9, "submitted_by": "r",
         "submitted_at": made + timedelta(hours=5), "feedback_source": "human_expert", "metadata": {}}])


def test_an_unloadable_champion_or_a_deleted_challenger_does_not_stop_answers_and_expiries(
        hive_home, tmp_path, monkeypatch):
    """The running test's challenger deleted in MLflow (its look stops the test later): the refresh links and
    expires, then scores with the champion alone and says so. A champion whose artifact fails its checksum:
    links and expires, requests nothing and says why. Both failed the step before anything moved."""
    from hive_assets import registry

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    model = train_small_model("business", NOW - timedelta(days=30), n_plans=600)
    client, champion = register_champion(uri, "business", model)
    _, challenger = register_champion(uri, "business", model)  # v2, then the champion alias back on v1
    name = registry.model_name("business")
    client.set_registered_model_alias(name, registry.CHAMPION, champion.version)
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=150, days=1, seed=5, now=NOW, feedback_rate=0.2, malformed_rate=0.0)
    store.upsert_many("ab_tests", [{
        "test_id": "ab-business-2", "specialist_type": "business", "status": "running", "started_at": NOW,
        "champion_version": str(champion.version), "challenger_version": str(challenger.version)}])
    client.delete_model_version(name, challenger.version)  # by hand, as in MLflow's UI
    expiring_requests(store, NOW - timedelta(hours=80))

    # the champion's files no longer match their checksum: nothing to score with
    client.set_model_version_tag(name, champion.version, registry.ARTIFACT_CHECKSUM_TAG, "0" * 64)
    [event] = materialize(uri, 10).asset_materializations_for_node("review_queue")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta["requested"] == 0 and "checksum mismatch" in meta["skipped"], meta
    assert (meta["answered_since_last"], meta["expired_since_last"], meta["open"]) == (1, 1, 1)
    assert {d["opinion_id"]: d["status"] for d in store.find(COLLECTION)} == {
        "answered": ANSWERED, "unanswered": EXPIRED, "waiting": "open"}

    # the champion sound again, the challenger still deleted: requests scored with the champion only
    client.delete_model_version_tag(name, champion.version, registry.ARTIFACT_CHECKSUM_TAG)
    monkeypatch.setenv("HIVE_SIMULATED_NOW", (NOW + timedelta(hours=1)).isoformat())
    [event] = materialize(uri, 10).asset_materializations_for_node("review_queue")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta["requested"] == 10 and meta["challenger_version"] == str(challenger.version)
    assert meta["challenger_not_scored"] == (f"challenger v{challenger.version} of the running test was deleted "
                                             "from the registry")
    assert "disagreement" not in meta["by_reason"]
    assert store.count(COLLECTION, {"model_version": str(champion.version)}) == 10


def test_malformed_requests_are_left_out_of_the_metadata_table(hive_home, tracking, monkeypatch):
    """A request with its rank as text or no score: left out of the queue table and counted, not a failed step."""
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    store = SQLiteStore(hive_home / "store.sqlite")
    expiring_requests(store, NOW - timedelta(hours=1))
    [bad] = [d for d in store.find(COLLECTION) if d["opinion_id"] == "waiting"]
    store.upsert_many(COLLECTION, [{**{k: v for k, v in bad.items() if k != "_id"}, "rank": "first"},
                                   {**{k: v for k, v in bad.items() if k != "_id"}, "request_id": "review:business:x",
                                    "opinion_id": "x", "score": None}])
    [event] = materialize(tracking, 0).asset_materializations_for_node("review_queue")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta["malformed_left_out"] == 2 and meta["open"] == 2  # its answer is 4 h ahead: "answered" is open
    assert [row.data["opinion_id"] for row in meta["queue"].records] == ["answered", "unanswered"]


def test_ab_tally_ignores_actively_requested_labels(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    at = datetime(2026, 5, 4, tzinfo=timezone.utc)
    opinions = [{"opinion_id": f"op{i}", "plan_id": f"p{i}", "specialist_type": "business", "evaluated_at": at,
                 "opinion": {"recommendation": "approve", "confidence_score": 0.8},
                 "metadata": {"ab_test_id": "t1", "ab_arm": "challenger" if i % 2 else "champion"}} for i in range(4)]
    store.upsert_many("specialist_opinions", opinions)
    store.upsert_many("specialist_feedback", [
        {"feedback_id": f"fb{i}", "opinion_id": f"op{i}", "plan_id": f"p{i}", "specialist_type": "business",
         "human_recommendation": "approve", "human_rating": 0.9, "submitted_by": "r",
         "submitted_at": at + timedelta(hours=1), "feedback_source": "human_expert", "metadata": {}} for i in range(4)])
    store.upsert_many(COLLECTION, [
        {"request_id": "review:business:op1", "opinion_id": "op1", "specialist_type": "business", "selection": ACTIVE},
        {"request_id": "review:business:op2", "opinion_id": "op2", "specialist_type": "business", "selection": RANDOM}])
    obs = arm_observations(store, {"test_id": "t1", "specialist_type": "business"}, at + timedelta(days=1))
    labelled = {o["opinion_id"]: str(t) != "NaT" for o, t in zip(sorted(opinions, key=lambda o: o["opinion_id"]),
                                                                   obs.labelled_at)}
    assert labelled == {"op0": True, "op1": False, "op2": True, "op3": True}


def test_the_loop_can_start_the_sensor_stopped_by_default(hive_home):
    from hive_assets.defs import build_defs
    from hive_assets.defs.simulator.daemon import InProcessDaemon

    assert review_queue_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    with dg.instance_for_test() as instance:
        daemon = InProcessDaemon(instance, build_defs())
        [sensor] = [s for s in daemon.sensors if s.name == "review_queue_sensor"]
        assert not daemon._state(sensor).is_running
        daemon.start("review_queue_sensor")
        assert daemon._state(sensor).is_running


def test_one_refresh_per_specialist_at_a_time_and_retraining_does_not_block_it(hive_home, tracking, monkeypatch):
    """A refresh takes the specialist's review lease: while another run holds it, a second refresh fails
    naming the holder and spends nothing; a held training lease (a retraining in progress) does not stop it."""
    from hive_assets import runs

    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    monkeypatch.setenv("HIVE_LEASE_WAIT_SECONDS", "0")
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=150, days=1, seed=5, now=NOW, feedback_rate=0.2, malformed_rate=0.0)
    other, _ = runs.try_acquire(store, runs.REVIEW, "business", "another-refresh", ttl_seconds=600)
    assert other is not None
    refresh = dg.Definitions(assets=[review_queue], jobs=[refresh_review_queue], resources={
        "document_store": DocumentStoreResource(), "mlflow": MlflowResource(tracking_uri=tracking),
        "platform": PlatformSettings()}).resolve_job_def("refresh_review_queue")

    def run_refresh():  # the sensor's job, as the daemon launches it
        return refresh.execute_in_process(partition_key="business", raise_on_error=False, run_config={
            "ops": {"review_queue": {"config": {"daily_budget": 10}}}})

    refused = run_refresh()
    assert not refused.success
    failures = [e.event_specific_data.error.to_string() for e in refused.all_events if e.is_failure]
    assert any("another run of business holds it (run another-refresh, review run" in f for f in failures), failures
    assert store.count(COLLECTION) == 0
    runs.release(store, other, "test done")

    training, _ = runs.try_acquire(store, runs.TRAINING, "business", "a-retraining", ttl_seconds=600)
    assert training is not None
    assert run_refresh().asset_materializations_for_node("review_queue")[0].metadata["requested"].value == 10
    # the refresh gave its own lease back; the retraining's is untouched
    assert [(d["lease_id"], d["owner_run_id"]) for d in runs.held_leases(store)] == [
        (runs.lease_id(runs.TRAINING, "business"), "a-retraining")]


def test_a_python_materialization_of_the_queue_takes_the_review_lease(hive_home, tracking, monkeypatch):
    """`dg.materialize([review_queue])` runs an ephemeral job with no asset selection: it took the training lease,
    so it ran beside a sensor's refresh (both reading the day's remaining budget) and waited for a retraining
    (audit, stop 53). Its steps say what it runs: the review lease, as the sensor's job."""
    from hive_assets import runs

    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    monkeypatch.setenv("HIVE_LEASE_WAIT_SECONDS", "0")
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=150, days=1, seed=5, now=NOW, feedback_rate=0.2, malformed_rate=0.0)
    resources = {"document_store": DocumentStoreResource(), "mlflow": MlflowResource(tracking_uri=tracking),
                 "platform": PlatformSettings()}
    config = {"ops": {"review_queue": {"config": {"daily_budget": 10}}}}
    other, _ = runs.try_acquire(store, runs.REVIEW, "business", "a-sensor-refresh", ttl_seconds=600)
    refused = dg.materialize([review_queue], partition_key="business", resources=resources, run_config=config,
                             raise_on_error=False)
    failures = [e.event_specific_data.error.to_string() for e in refused.all_events if e.is_failure]
    assert not refused.success and store.count(COLLECTION) == 0
    assert any("another run of business holds it (run a-sensor-refresh, review run" in f for f in failures), failures
    runs.release(store, other, "test done")

    training, _ = runs.try_acquire(store, runs.TRAINING, "business", "a-retraining", ttl_seconds=600)
    done = dg.materialize([review_queue], partition_key="business", resources=resources, run_config=config)
    assert done.asset_materializations_for_node("review_queue")[0].metadata["requested"].value == 10
    assert [(d["lease_id"], d["owner_run_id"]) for d in runs.held_leases(store)] == [
        (runs.lease_id(runs.TRAINING, "business"), "a-retraining")]


@pytest.mark.parametrize(("job_name", "selection", "kind"), [
    ("refresh_review_queue", ["review_queue"], "review"),
    ("__ASSET_JOB", ["review_queue"], "review"),
    ("__ASSET_JOB", ["raw_production_data", "enhanced_features", "review_queue"], "training"),
    ("ab_test_check", ["ab_test_outcome"], "operator"),
    ("retrain_specialist", ["raw_production_data", "trained_model"], "training"),
])
def test_which_lease_a_run_takes(job_name, selection, kind):
    from hive_assets.defs.runs.lease import lease_target

    run = dg.DagsterRun(job_name=job_name, run_id="r1", tags={"dagster/partition": "business"},
                        asset_selection=frozenset(dg.AssetKey(a) for a in selection))
    assert lease_target(run) == (kind, "business")


def test_a_failed_daily_refresh_is_retried_under_a_key_of_its_own(monkeypatch):
    """A run key is used once, failed or not: a refresh that failed at the day's tick (MLflow down) left the
    specialist without a queue until the next UTC day. Each failure now gives the next tick a retry key, up
    to MAX_ATTEMPTS a day; a run that is alive or done is not repeated."""
    from hive_assets.defs.review.sensors import MAX_ATTEMPTS, RUN_KEY_TAG, refresh_review_queue, run_key

    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    instance = dg.DagsterInstance.ephemeral()
    job = dg.Definitions(assets=[review_queue], jobs=[refresh_review_queue], resources={
        "document_store": DocumentStoreResource(), "mlflow": MlflowResource(),
        "platform": PlatformSettings()}).resolve_job_def("refresh_review_queue")

    def launched(specialist: str, key: str, status: dg.DagsterRunStatus) -> None:
        instance.create_run_for_job(job, status=status, tags={RUN_KEY_TAG: key, "dagster/partition": specialist})

    def keys() -> dict[str, str]:
        result = review_queue_sensor(dg.build_sensor_context(instance=instance, resources={"mlflow": MlflowResource()}))
        return {r.partition_key: r.run_key for r in result.run_requests}

    day = "2026-05-04"
    launched("business", f"review_queue:business:{day}", dg.DagsterRunStatus.FAILURE)
    launched("technical", f"review_queue:technical:{day}", dg.DagsterRunStatus.SUCCESS)
    assert keys()["business"] == f"review_queue:business:{day}:retry-1"
    assert keys()["technical"] == f"review_queue:technical:{day}"  # the daemon skips a key already used
    launched("business", f"review_queue:business:{day}:retry-1", dg.DagsterRunStatus.FAILURE)
    assert keys()["business"] == f"review_queue:business:{day}:retry-2"
    launched("business", f"review_queue:business:{day}:retry-2", dg.DagsterRunStatus.FAILURE)
    assert MAX_ATTEMPTS == 3 and "business" not in keys()  # three failed today: tomorrow's queue
    # a run still going, or canceled by an operator, is not repeated: its key stays the day's
    launched("behavior", f"review_queue:behavior:{day}", dg.DagsterRunStatus.STARTED)
    launched("evolution", f"review_queue:evolution:{day}", dg.DagsterRunStatus.CANCELED)
    assert (keys()["behavior"], keys()["evolution"]) == (f"review_queue:behavior:{day}", f"review_queue:evolution:{day}")
    monkeypatch.setenv("HIVE_SIMULATED_NOW", (NOW + timedelta(days=1)).isoformat())
    assert keys()["business"] == run_key("business", NOW + timedelta(days=1)) == "review_queue:business:2026-05-05"


def test_raw_production_data_marks_each_label_by_its_time_against_its_request(hive_home, monkeypatch):
    """The collection's `label_selection` column: a request's selection for a label submitted by its expiry,
    organic for one submitted after it (whatever the request's stored status), organic without a request."""
    from hive_assets.defs.data.assets import raw_production_data
    from hive_assets.review import ORGANIC

    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=150, days=3, seed=5, now=NOW, feedback_rate=0.9, malformed_rate=0.0,
             specialists=["business"])
    answers: dict[str, list] = {}
    for fb in store.find("specialist_feedback", {"specialist_type": "business"}):
        answers.setdefault(str(fb["opinion_id"]), []).append(fb)
    # opinions with one trusted answer: its time is the label's
    labelled = {o: to_utc(fbs[0]["submitted_at"]) for o, fbs in answers.items()
                if len(fbs) == 1 and TrustPolicy().reason_to_drop(fbs[0]) is None}
    late, in_time = sorted(labelled)[:2]
    store.upsert_many(COLLECTION, [
        {"request_id": f"review:business:{o}", "opinion_id": o, "specialist_type": "business", "selection": ACTIVE,
         "status": EXPIRED, "requested_at": labelled[o] - timedelta(hours=5), "expires_at": expires}
        for o, expires in ((late, labelled[late] - timedelta(hours=1)), (in_time, labelled[in_time]))])
    result = dg.materialize([raw_production_data], partition_key="business", resources={
        "document_store": DocumentStoreResource(), "platform": PlatformSettings()},
        run_config={"ops": {"raw_production_data": {"config": {"min_samples": 10}}}})
    frame = result.output_for_node("raw_production_data").frame.set_index("opinion_id")
    assert frame.loc[late, "label_selection"] == ORGANIC and frame.loc[in_time, "label_selection"] == ACTIVE
    assert (frame.drop(index=[late, in_time])["label_selection"] == ORGANIC).all()


def test_a_run_without_a_budget_in_its_config_spends_the_setting_s(hive_home, tracking, monkeypatch):
    """A manual run (the UI's Launchpad, `dagster asset materialize`) without config spent 100, whatever
    REVIEW_QUEUE_DAILY_BUDGET said for the sensor's runs; a malformed setting now fails such a run saying so."""
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=150, days=1, seed=5, now=NOW, feedback_rate=0.2, malformed_rate=0.0)
    resources = {"document_store": DocumentStoreResource(), "mlflow": MlflowResource(tracking_uri=tracking),
                 "platform": PlatformSettings()}
    monkeypatch.setenv("REVIEW_QUEUE_DAILY_BUDGET", "business=abc")
    failed = dg.materialize([review_queue], partition_key="business", resources=resources, raise_on_error=False)
    assert not failed.success and store.count(COLLECTION) == 0
    assert "REVIEW_QUEUE_DAILY_BUDGET must be a number" in failure_message(failed)
    monkeypatch.setenv("REVIEW_QUEUE_DAILY_BUDGET", "business=7,technical=40")
    result = dg.materialize([review_queue], partition_key="business", resources=resources)
    assert result.asset_materializations_for_node("review_queue")[0].metadata["requested"].value == 7
    assert store.count(COLLECTION) == 7


def test_no_refresh_is_requested_while_the_model_registry_is_down(hive_home, monkeypatch):
    """Requested while MLflow was down, a refresh failed after its retries and spent one of the day's three
    attempts: an outage over three hourly ticks left the specialists without a queue until the next day."""
    from hive_assets_tests.conftest import free_port

    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    down = MlflowResource(tracking_uri=f"http://hive:s3cret-pw@127.0.0.1:{free_port()}")  # refused
    skipped = review_queue_sensor.evaluate_tick(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(),
                                                                        resources={"mlflow": down}))
    assert not skipped.run_requests
    assert skipped.skip_message.startswith("model registry unavailable, no refresh requested (MLflow at "
                                           "http://hive:***@127.0.0.1:") and "s3cret-pw" not in skipped.skip_message
    back = review_queue_sensor(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(),
                                                       resources={"mlflow": MlflowResource()}))
    assert sorted(r.partition_key for r in back.run_requests) == sorted(SPECIALISTS)  # MLflow back (the home's)
