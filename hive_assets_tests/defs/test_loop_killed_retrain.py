"""A `hive loop` SIGKILLed while a retrain its feedback sensor launched runs: a real loop tick in its own process
(the in-process daemon, the real sensor and `retrain_specialist`), killed by a hook inside the run's first step.
The next loop marks the dead run failed (its lease is stale), its trigger document follows, and the hour played
again requests the trigger's next attempt. Before, that hour's sensor found the dead run still STARTED ("in
flight" for HIVE_RETRAIN_MAX_RUNTIME_SECONDS of wall time) and, once it was marked failed, requested the same run
key, which the daemon skips: the trigger document stayed `pending` and the retrain was lost until the cooldown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timezone

import dagster as dg

from hive_assets import runs
from hive_assets.data import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.defs.monitoring.sensors import TRIGGER_TAG
from hive_assets.defs.simulator.daemon import InProcessDaemon
from hive_assets.defs.simulator.loop import SENSOR_ORDER, recover_killed_runs
from hive_assets.simulator import simulate

NOW = datetime(2026, 3, 2, 5, tzinfo=timezone.utc)  # the simulated hour the killed loop was playing
SPECIALIST = "business"
RUN_KEY_TAG = "dagster/run_key"

KILLED_LOOP = textwrap.dedent("""
    import os, signal
    from datetime import datetime
    import dagster as dg
    import hive_assets.defs.data.assets as data_assets
    from hive_assets.defs import build_defs
    from hive_assets.defs.simulator.daemon import InProcessDaemon
    from hive_assets.defs.simulator.loop import SENSOR_ORDER

    def killed(*args, **kwargs):  # the loop's process dies while the retrain it launched collects
        print("collecting", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    data_assets.collect = killed
    daemon = InProcessDaemon(dg.DagsterInstance.get(), build_defs(), order=SENSOR_ORDER)
    daemon.sensors = [s for s in daemon.sensors if s.name == "feedback_retraining_sensor"]
    daemon.tick(datetime.fromisoformat(os.environ["HIVE_SIMULATED_NOW"]))
""")


def test_a_retrain_killed_with_the_loop_is_failed_with_the_reason_and_launched_again(hive_home, monkeypatch):
    monkeypatch.setenv("RETRAINING_FEEDBACK_THRESHOLD", "20")
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=120, days=3, seed=5, now=NOW, malformed_rate=0.0, specialists=[SPECIALIST])

    proc = subprocess.run([sys.executable, "-c", KILLED_LOOP], capture_output=True, text=True, timeout=600,
                          env={**os.environ})
    assert proc.returncode == -signal.SIGKILL and proc.stdout.strip() == "collecting", proc.stderr[-2000:]

    instance = dg.DagsterInstance.get()
    (killed,) = instance.get_runs(dg.RunsFilter(job_name="retrain_specialist"))
    key = killed.tags[RUN_KEY_TAG]
    assert (killed.status, killed.tags["dagster/partition"], killed.tags[TRIGGER_TAG]) == (
        dg.DagsterRunStatus.STARTED, SPECIALIST, key)  # what the kill leaves: nobody told the instance
    pending = store.find_one("retraining_triggers", {"trigger_id": key})
    assert (pending["status"], pending["dagster_run_id"]) == ("pending", None)
    assert store.find_one(runs.COLLECTION, {"owner_run_id": killed.run_id})["state"] == runs.HELD

    # the next loop: run monitoring's work for what the killed one left, then the hour played again
    defs = build_defs()
    daemon = InProcessDaemon(instance, defs, order=SENSOR_ORDER)
    daemon.sensors = [s for s in daemon.sensors if s.name == "feedback_retraining_sensor"]
    said = recover_killed_runs(daemon, store)
    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
    failed = store.find_one("retraining_triggers", {"trigger_id": key})
    assert (failed["status"], failed["dagster_run_id"]) == ("failed", killed.run_id)
    assert "hive loop" in failed["error"] and "is gone" in failed["error"]
    assert any(killed.run_id in line for line in said)

    (again,) = daemon.tick(NOW)
    assert (again.partition, again.run_key, again.tags[TRIGGER_TAG]) == (SPECIALIST, f"{key}:retry-1", f"{key}:retry-1")
    retried = store.find_one("retraining_triggers", {"trigger_id": f"{key}:retry-1"})
    # it ran and its document followed it (a home this small stops at the `trainable` check: beside the point)
    assert (retried["status"], retried["dagster_run_id"]) == ("failed", again.run_id)
    assert retried["error"].startswith("check trainable failed: business: ")  # the check's own words
    assert retried["reason"] == "feedback" and retried["specialist_type"] == SPECIALIST
    # the cursor now holds the request: the next tick is held by the cooldown, launches nothing
    assert daemon.tick(NOW.replace(hour=7)) == []
    assert sorted(d["trigger_id"] for d in store.find("retraining_triggers", {})) == [key, f"{key}:retry-1"]
