"""The triggers end to end with the REAL daemon: `dagster-daemon run -w workspace.yaml` (the platform's
code location) on a temporary DAGSTER_HOME holding the repository's dagster.yaml, started in its own
session and stopped by killing its process group. MLflow and the store are the embedded ones under
HIVE_HOME; the sensors' intervals and the cooldown are lowered through their environment variables.

1. without drift and below the feedback threshold, several ticks of both sensors launch nothing;
2. 100 new trusted feedback documents for one specialist -> a run of exactly that partition starts and
   succeeds, and its `retraining_triggers` document ends `completed` (written by the run-status sensors);
3. drifted plans injected; technical's champion has a drift reference -> a drift run of technical starts.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timedelta, timezone

import dagster as dg

from hive_assets.config import SPECIALISTS
from hive_assets.data import SQLiteStore
from hive_assets.simulator import simulate
from hive_assets_tests.daemon import REPO, Daemon
from hive_assets_tests.monitoring.champion import register_champion, train_small_model
from hive_assets_tests.services import _tail


def new_trusted_feedback(store: SQLiteStore, specialist: str, n: int) -> None:
    """`n` new human feedback documents for `specialist`: the simulator's own labels, submitted now."""
    now = datetime.now(timezone.utc)
    old = list(store.find("specialist_feedback", {"specialist_type": specialist, "feedback_source": "human_expert",
                                                    "metadata.auto_generated": {"$exists": False}}, limit=n))
    assert len(old) == n
    store.upsert_many("specialist_feedback", [
        {**fb, "feedback_id": f"fb-new-{uuid.uuid4().hex[:12]}", "submitted_at": now + timedelta(milliseconds=i),
         "metadata": {}} for i, fb in enumerate(old)])


def runs(instance, **tags):
    return instance.get_runs(filters=dg.RunsFilter(tags=tags) if tags else None)


def test_feedback_and_drift_trigger_real_runs(hive_home, tmp_path):
    home = hive_home / "dagster"
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    store = SQLiteStore(hive_home / "store.sqlite")
    now = datetime.now(timezone.utc)
    simulate(store, plans=1500, days=45, seed=61, now=now - timedelta(days=2))  # history, labelled
    simulate(store, plans=400, days=0.5, seed=62, now=now, feedback_rate=0.0)  # recent plans, no drift
    register_champion(f"sqlite:///{hive_home / 'mlflow.db'}", "technical",
                      train_small_model("technical", now - timedelta(days=30), n_plans=800))
    instance = dg.DagsterInstance.from_config(str(home))
    for s in SPECIALISTS:  # every specialist trained just now: no feedback counts yet
        instance.report_runless_asset_event(dg.AssetMaterialization("trained_model", partition=s))

    daemon = Daemon(home, tmp_path, {
        "HIVE_FEEDBACK_SENSOR_INTERVAL_SECONDS": "3", "HIVE_DRIFT_SENSOR_INTERVAL_SECONDS": "5",
        "HIVE_RUN_STATUS_SENSOR_INTERVAL_SECONDS": "2", "RETRAINING_COOLDOWN_HOURS": "0.0003",
        "PYTHONPATH": str(REPO), "DAGSTER_HOME": str(home)})
    try:
        # 1. several ticks of both sensors, nothing launched
        daemon.wait_for(lambda: store.count("drift_monitoring", {"specialist_type": "technical"}) >= 3,
                        "three drift checks of technical")
        checks = list(store.find("drift_monitoring", {"specialist_type": "technical"}))
        assert {c["decision"] for c in checks} == {"no_drift"} and all(c["window_size"] >= 350 for c in checks)
        observed = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=dg.AssetKey("feedback")), limit=50)
        assert {r.partition_key for r in observed.records} == set(SPECIALISTS)
        assert runs(instance) == []

        # 2. 100 trusted feedback for business -> one run of exactly that partition, succeeded, trigger completed
        new_trusted_feedback(store, "business", 100)
        [run] = daemon.wait_for(lambda: runs(instance, **{"hive/trigger_reason": "feedback"}), "a feedback run")
        assert run.tags["dagster/partition"] == "business" and run.job_name == "retrain_specialist"
        trigger_id = run.tags["hive/trigger_id"]
        assert trigger_id == run.tags["dagster/run_key"] and trigger_id.startswith("feedback:business:")
        done = daemon.wait_for(
            lambda: (d := store.find_one("retraining_triggers", {"trigger_id": trigger_id})) and
            d["status"] in ("completed", "failed") and d, "the trigger document's final status", timeout=240)
        final = instance.get_run_by_id(run.run_id)
        assert final.status == dg.DagsterRunStatus.SUCCESS, _tail(daemon.log_path.read_text(), 3000)
        assert done["status"] == "completed" and done["dagster_run_id"] == run.run_id
        assert done["feedback_count"] == 100 and done["metrics"]
        assert {r.tags["dagster/partition"] for r in runs(instance)} == {"business"}

        # 3. drifted plans for everyone; technical's champion has a reference -> a drift run of technical
        simulate(store, plans=800, days=0.4, seed=63, now=datetime.now(timezone.utc), drift=1.0, feedback_rate=0.0)
        assert runs(instance, **{"hive/trigger_reason": "drift"}) == []
        # (business's new champion carries a reference from training too, so it may drift as well)
        [drift_run] = daemon.wait_for(lambda: runs(instance, **{"hive/trigger_reason": "drift",
                                                              "dagster/partition": "technical"}), "a drift run")
        assert drift_run.tags["hive/trigger_id"].startswith("drift:technical:v1:t")
        daemon.wait_for(lambda: instance.get_run_by_id(drift_run.run_id).status != dg.DagsterRunStatus.QUEUED
                        or None, "the drift run leaving the queue", timeout=60)
        drifted = store.find_one("drift_monitoring", {"specialist_type": "technical", "decision": "drift"})
        assert drifted["run_key"] == drift_run.tags["hive/trigger_id"] and drifted["drift_score"] > 0.2
    finally:
        daemon.stop()
