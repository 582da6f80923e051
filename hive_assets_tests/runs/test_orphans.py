"""A run SIGKILLed mid-training (a real `retrain_specialist` run in its own process, killed by a hook on
the training call) is found by `hive doctor` (read-only first), marked failed with `--fix` (its MLflow run
FAILED, its lease released), and the feedback trigger that its STARTED run blocked fires again."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from hive_assets import clock, registry, runs
from hive_assets.data import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.defs.runs.doctor import find_orphans
from hive_assets.defs.runs.lease import take
from hive_assets.defs.monitoring.sensors import feedback_retraining_sensor
from hive_assets.simulator import simulate

pytestmark = pytest.mark.services

KILLED_TRAINING = textwrap.dedent("""
    import os, signal, sys
    import dagster as dg
    import hive_assets.training as training  # the step imports train_model from here when it fits
    from hive_assets.definitions import defs

    def killed(*args, **kwargs):  # the process dies inside the training step, as an OOM kill would
        print("training", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    training.train_model = killed
    config = {"ops": {"raw_production_data": {"config": {"min_samples": 10}},
                      "enhanced_features": {"config": {"min_training_samples": 50}}}}
    defs.resolve_job_def("retrain_specialist").execute_in_process(
        instance=dg.DagsterInstance.get(), partition_key="business", run_config=config,
        tags={"hive/trigger_id": "manual:test", "hive/trigger_reason": "manual"})
""")


def test_a_run_killed_mid_training_is_found_marked_failed_and_the_next_trigger_fires(
        hive_home, mlflow_server, monkeypatch, capsys):
    experiment = "orphans"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    monkeypatch.setenv("RETRAINING_FEEDBACK_THRESHOLD", "20")
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=300, days=20, seed=5, now=datetime.now(timezone.utc), malformed_rate=0.0)

    proc = subprocess.run([sys.executable, "-c", KILLED_TRAINING], capture_output=True, text=True, timeout=600,
                          env={**os.environ})
    assert proc.returncode == -signal.SIGKILL and proc.stdout.strip() == "training", proc.stderr[-2000:]

    instance = dg.DagsterInstance.get()
    (record,) = instance.get_run_records(dg.RunsFilter(job_name="retrain_specialist"))
    run_id = record.dagster_run.run_id
    assert record.dagster_run.status == dg.DagsterRunStatus.STARTED  # what a kill leaves
    client = registry.client_for(mlflow_server)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    (mlflow_run,) = registry.running_runs(client, experiment_id, run_id)
    defs = build_defs()

    def tick():
        context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
        return feedback_retraining_sensor.evaluate_tick(context)

    blocked = tick()  # every specialist is over the threshold: only business has a (dead) run in flight
    assert "business" not in [r.partition_key for r in blocked.run_requests] and blocked.run_requests

    from hive_assets.cli._main import main

    capsys.readouterr()
    assert main(["doctor", "--json"]) == 1  # read-only: found, nothing changed
    found = json.loads(capsys.readouterr().out)
    (orphan,) = found["dagster_runs"]
    assert orphan["run_id"] == run_id and orphan["specialist"] == "business"
    assert orphan["reason"].startswith("process ") and orphan["reason"].endswith(" is gone")
    assert [m["run_id"] for m in found["mlflow_runs"]] == [mlflow_run.info.run_id]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    assert store.find_one(runs.COLLECTION, {"owner_run_id": run_id})["state"] == runs.HELD

    assert main(["doctor", "--fix"]) == 0
    text = capsys.readouterr().out
    assert f"dagster run {run_id}" in text and "fixed: " in text
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    ended = client.get_run(mlflow_run.info.run_id)
    assert ended.info.status == "FAILED" and "is gone" in ended.data.tags[registry.FAILURE_REASON_TAG]
    lease = store.find_one(runs.COLLECTION, {"owner_run_id": run_id})
    assert lease["state"] == runs.RELEASED and "hive doctor" in lease["release_reason"]

    fired = tick()  # the in-flight guard no longer sees the dead run
    assert "business" in [r.partition_key for r in fired.run_requests]
    assert main(["doctor"]) == 0 and "no orphaned runs" in capsys.readouterr().out


WAITING_TRAINING = textwrap.dedent("""
    import dagster as dg
    from hive_assets import runs
    from hive_assets.definitions import defs

    acquire = runs.acquire

    def acquire_and_say_so(*args, on_wait=None, **kwargs):  # the lease module's call, announcing its wait
        def waiting(holder):
            print("waiting", flush=True)
            if on_wait is not None:
                on_wait(holder)
        return acquire(*args, on_wait=waiting, **kwargs)

    runs.acquire = acquire_and_say_so
    defs.resolve_job_def("retrain_specialist").execute_in_process(
        instance=dg.DagsterInstance.get(), partition_key="business",
        tags={"hive/trigger_id": "manual:test", "hive/trigger_reason": "manual"})
""")


def test_a_run_killed_before_it_took_its_lease_is_found_and_no_longer_blocks_the_trigger(
        hive_home, monkeypatch, capsys):
    """A `retrain_specialist` run (its own process) waits for the training lease another live run holds and
    is SIGKILLed there: its run is STARTED, it holds no lease. The feedback trigger's in-flight guard counted it
    for HIVE_RETRAIN_MAX_RUNTIME_SECONDS (4 h) while `hive doctor` said all was well; now the run's own tags
    (host, pid) show its process gone: doctor reports it, `--fix` marks it FAILURE and the trigger fires."""
    monkeypatch.setenv("RETRAINING_FEEDBACK_THRESHOLD", "20")
    monkeypatch.setenv("HIVE_LEASE_WAIT_SECONDS", "600")
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=300, days=20, seed=5, now=datetime.now(timezone.utc), malformed_rate=0.0)
    holder, _ = runs.acquire(store, runs.TRAINING, "business", "a-live-holder", ttl_seconds=3600)  # this process

    proc = subprocess.Popen([sys.executable, "-c", WAITING_TRAINING], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    instance = dg.DagsterInstance.get()
    try:
        line = proc.stdout.readline()  # blocks until the run waits for the lease (or the process ends)
        if line.strip() == "waiting":  # alive, waiting: not an orphan, whatever its tags say
            assert not find_orphans(instance, store, specialist="business").dagster_runs
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=60)
    assert line.strip() == "waiting", err[-2000:]
    runs.release(store, holder, "the live holder ended")

    (record,) = instance.get_run_records(dg.RunsFilter(job_name="retrain_specialist"))
    run_id = record.dagster_run.run_id
    assert record.dagster_run.status == dg.DagsterRunStatus.STARTED and not runs.leases_of_run(store, run_id)
    defs = build_defs()

    def tick():
        context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
        return feedback_retraining_sensor.evaluate_tick(context)

    blocked = tick()  # what blocks: the dead run counts as in flight (`run_in_flight`), no lease is involved
    assert "business" not in [r.partition_key for r in blocked.run_requests] and blocked.run_requests

    from hive_assets.cli._main import main

    capsys.readouterr()
    assert main(["doctor", "--json"]) == 1  # it said "no orphaned runs or stale leases" and exited 0
    found = json.loads(capsys.readouterr().out)
    (orphan,) = found["dagster_runs"]
    assert (orphan["run_id"], orphan["specialist"], orphan["leases"]) == (run_id, "business", [])
    assert orphan["reason"] == (f"process {proc.pid} on {runs.this_host()} is gone, and it held no lease (killed "
                                "before it took one)")
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED  # read-only

    assert main(["doctor", "--fix"]) == 0
    assert f"fixed: dagster run {run_id} marked FAILURE" in capsys.readouterr().out
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert "business" in [r.partition_key for r in tick().run_requests]
    assert main(["doctor"]) == 0 and "no orphaned runs" in capsys.readouterr().out


def test_the_next_run_of_the_specialist_marks_a_dead_holder_failed_at_its_start(hive_home, mlflow_server, monkeypatch):
    """The run-start check: a run whose process is gone while it held the training lease (here a STARTED
    run record and its lease, pid of a process that exited) is marked failed by the next run of that
    specialist, whatever its kind (a cheap A/B look), before that run takes its own lease."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                  text=True).stdout)
    defs = build_defs()
    instance = dg.DagsterInstance.get()
    dead = instance.create_run_for_job(defs.resolve_job_def("retrain_specialist"), status=dg.DagsterRunStatus.STARTED,
                                       tags={"dagster/partition": "business"})
    store = SQLiteStore(hive_home / "store.sqlite")
    lease, _ = runs.acquire(store, runs.TRAINING, "business", dead.run_id, ttl_seconds=3600)
    store.update_one(runs.COLLECTION, {"lease_id": lease.lease_id}, {"pid": dead_pid})

    look = defs.resolve_job_def("ab_test_check").execute_in_process(instance=instance, partition_key="business")
    assert look.success
    after = instance.get_run_by_id(dead.run_id)
    assert after.status == dg.DagsterRunStatus.FAILURE
    (failure,) = instance.all_logs(dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert f"the start of run {look.run_id}" in failure.dagster_event.message
    assert f"process {dead_pid} on {runs.this_host()} is gone" in failure.dagster_event.message
    released = store.find_one(runs.COLLECTION, {"lease_id": lease.lease_id})
    assert released["state"] == runs.RELEASED and look.run_id in released["release_reason"]
    operator = store.find_one(runs.COLLECTION, {"lease_id": runs.lease_id(runs.OPERATOR, "business")})
    assert (operator["owner_run_id"], operator["state"]) == (look.run_id, runs.RELEASED)  # its own, given back


def retrain_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus = dg.DagsterRunStatus.STARTED):
    """A `retrain_specialist` run of business, recorded as the run launcher records one."""
    return instance.create_run_for_job(build_defs().resolve_job_def("retrain_specialist"), status=status,
                                       tags={"dagster/partition": "business"})


STALE_HEARTBEAT = timedelta(seconds=600)  # against a TTL of 120 s


def stale_lease(store, kind: str, run_id: str, **fields) -> tuple[runs.Lease, datetime]:
    """(the (kind, business) lease of `run_id`, its last heartbeat): taken with a TTL of 120 s, the heartbeat
    set 10 minutes back, so the lease is stale; `fields`: more of the document to set (its host)."""
    lease, _ = runs.acquire(store, kind, "business", run_id, ttl_seconds=120)
    beat = clock.wall_now() - STALE_HEARTBEAT
    store.update_one(runs.COLLECTION, {"lease_id": lease.lease_id},
                     {"heartbeat_at": beat, "expires_at": beat + timedelta(seconds=120), **fields})
    return lease, beat


def test_a_run_resumed_in_a_new_pod_takes_its_own_stale_lease_back(hive_home):
    """Run monitoring resumes a run whose pod died under the same run id (`max_resume_run_attempts`): its
    training lease is its own, stale, held from the dead pod's host. The run-start check must not mark the
    run itself FAILURE (it did, and run retries then launched a second run beside the resumed one)."""
    instance = dg.DagsterInstance.get()
    run = retrain_run(instance)
    store = SQLiteStore(hive_home / "store.sqlite")
    lease, _ = stale_lease(store, runs.TRAINING, run.run_id, host="the-dead-pod")
    assert runs.stale_reason(store.find_one(runs.COLLECTION, {"lease_id": lease.lease_id}), clock.wall_now())

    holder = take(instance, run.run_id, run.job_name, runs.TRAINING, "business", logging.getLogger(__name__))
    try:
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        held = store.find_one(runs.COLLECTION, {"lease_id": lease.lease_id})
        assert (held["state"], held["owner_run_id"], held["host"]) == (runs.HELD, run.run_id, runs.this_host())
        assert runs.stale_reason(held, clock.wall_now()) is None
    finally:
        holder.end("test over")
    assert store.find_one(runs.COLLECTION, {"lease_id": lease.lease_id})["state"] == runs.RELEASED


def test_a_run_resumed_after_dying_inside_its_decisions_is_not_failed_by_the_next_run_s_check(hive_home):
    """A training run holds the operator lease too around its registry decisions (`run_lease.deciding`). Its
    pod died there; run monitoring resumed it in a new pod, which took its training lease back: the stale
    operator lease of the dead pod made the next run's start check (here an A/B look) mark the live run
    FAILURE. A run is gone only when every lease it holds is stale; the stale one is released."""
    instance = dg.DagsterInstance.get()
    run = retrain_run(instance)
    store = SQLiteStore(hive_home / "store.sqlite")
    for kind in (runs.TRAINING, runs.OPERATOR):  # both held by the pod that died inside `deciding`
        _, died = stale_lease(store, kind, run.run_id, host="the-dead-pod")
    log = logging.getLogger(__name__)
    resumed = take(instance, run.run_id, run.job_name, runs.TRAINING, "business", log)  # the new pod
    try:
        look = take(instance, "an-ab-look", "ab_test_check", runs.OPERATOR, "business", log)
        look.end("look over")
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        training = store.find_one(runs.COLLECTION, {"lease_id": runs.lease_id(runs.TRAINING, "business")})
        assert (training["state"], training["owner_run_id"]) == (runs.HELD, run.run_id)
    finally:
        resumed.end("test over")
    # a run whose every lease is stale is still gone: the dead pod's run, not resumed
    gone = runs.orphan_runs([runs.RunFacts(run.run_id, "retrain_specialist", "STARTED", "business", died)],
                            [{**d, "heartbeat_at": died, "expires_at": died, "state": runs.HELD}
                             for d in runs.leases_of_run(store, run.run_id)],
                            clock.wall_now(), timedelta(hours=4), timedelta(seconds=120))
    assert [g["run_id"] for g in gone] == [run.run_id]


def test_doctor_fix_exits_1_and_says_what_remains_after_its_fixes(hive_home, monkeypatch, capsys):
    """A training run's process paused (its lease expired: doctor finds the run orphaned) and resumes between
    doctor's check and its fix: `--fix` marks the run FAILURE, and rightly leaves the lease that a heartbeat
    renewed meanwhile, now held for a failed run. It exited 0 (it had fixed something) and said nothing of the
    lease; it says what remains, exit 1, and the next `--fix`, which releases the lease, exits 0."""
    from hive_assets.cli._main import main
    from hive_assets.defs.runs import doctor

    instance = dg.DagsterInstance.get()
    paused = retrain_run(instance)
    store = SQLiteStore(hive_home / "store.sqlite")
    lease, _ = stale_lease(store, runs.TRAINING, paused.run_id)
    real_fix_orphans = doctor.fix_orphans

    def resumed_before_the_fix(*args, **kwargs):  # the paused process heartbeats again
        assert runs.renew(store, lease)
        return real_fix_orphans(*args, **kwargs)

    monkeypatch.setattr(doctor, "fix_orphans", resumed_before_the_fix)
    capsys.readouterr()
    assert main(["doctor", "--fix"]) == 1
    out = capsys.readouterr().out
    assert f"fixed: dagster run {paused.run_id} marked FAILURE" in out, out
    assert (f"remains: lease {lease.lease_id} held for run {paused.run_id}: its run is FAILURE\n"
            "1 problem(s) remain after the fixes") in out, out
    assert instance.get_run_by_id(paused.run_id).status == dg.DagsterRunStatus.FAILURE
    assert store.find_one(runs.COLLECTION, {"lease_id": lease.lease_id})["state"] == runs.HELD

    monkeypatch.setattr(doctor, "fix_orphans", real_fix_orphans)
    assert main(["doctor", "--fix", "--json"]) == 0  # the lease of a failed run: released, nothing left
    found = json.loads(capsys.readouterr().out)
    assert [lease_["lease_id"] for lease_ in found["stale_leases"]] == [lease.lease_id] and found["fixed"]
    assert not any(found["remaining"].values()), found["remaining"]
    assert store.find_one(runs.COLLECTION, {"lease_id": lease.lease_id})["state"] == runs.RELEASED
    assert main(["doctor"]) == 0 and "no orphaned runs" in capsys.readouterr().out


def test_an_mlflow_run_doctor_cannot_end_is_not_fixed_exit_1_not_a_traceback(hive_home, monkeypatch, capsys):
    """An orphaned MLflow run that MLflow refuses to end (here deleted between doctor's check and its fix: MLflow
    refuses tags on a deleted run) made `hive doctor --fix` fail with a traceback, the other fixes' report lost;
    it is now a "not fixed" line and exit 1 (audit, stop 53)."""
    from hive_assets.cli._main import main
    from hive_assets.config import Settings
    from hive_assets.defs.runs import doctor

    settings = Settings.from_env()  # the embedded registry of the home
    instance = dg.DagsterInstance.get()
    ended = retrain_run(instance, dg.DagsterRunStatus.FAILURE)
    client = registry.client_for(settings.mlflow_uri)
    experiment_id = client.create_experiment(settings.mlflow_experiment_name)
    left_running = client.create_run(experiment_id, tags={"dagster.run_id": ended.run_id,
                                                          "dagster.partition": "business"}).info.run_id
    capsys.readouterr()
    assert main(["doctor", "--json"]) == 1
    assert [m["run_id"] for m in json.loads(capsys.readouterr().out)["mlflow_runs"]] == [left_running]

    real_fix_orphans = doctor.fix_orphans

    def deleted_before_the_fix(*args, **kwargs):
        client.delete_run(left_running)  # still RUNNING, no longer active: MLflow refuses to tag it
        return real_fix_orphans(*args, **kwargs)

    monkeypatch.setattr(doctor, "fix_orphans", deleted_before_the_fix)
    assert main(["doctor", "--fix"]) == 1
    out = capsys.readouterr().out
    assert f"not fixed: could not end mlflow run {left_running}: " in out and "Traceback" not in out, out
    assert client.get_run(left_running).info.status == "RUNNING"  # not half-ended: no tag, no status
    assert registry.FAILURE_REASON_TAG not in client.get_run(left_running).data.tags
