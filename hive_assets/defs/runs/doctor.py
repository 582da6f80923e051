"""Orphaned runs, read from the Dagster instance and MLflow and acted on: `hive doctor` and the check at the
start of every leased run. The decisions are `hive_assets.runs`'s; this module gathers the facts and applies
the verdicts (run marked FAILURE with the reason, MLflow run ended FAILED with the reason as a tag, leases
released by compare-and-swap so a live holder that renewed meanwhile keeps its lease). `hive doctor` also
finds the registry decisions a crash left unfinished, and A/B tests out of step with the registry (no intent
names them: `rollout.out_of_step`), versions created without their registration row, and, with --fix,
completes them as the next registry command or A/B look would (`find_unfinished_intents`, `find_out_of_step`,
`complete_intents`, `find_unrecorded_registrations`, `record_registrations`). `holding`: a lease held around a block of
work, with its heartbeat, as every leased run (`lease.take`) and `--fix` hold one."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import dagster as dg

from hive_assets import clock, registry, runs
from hive_assets.config import SPECIALISTS, Settings
from hive_assets.data.store.base import DocumentStore

ALIVE = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
FAILED_BY = "hive doctor"


def specialist_of(run: dg.DagsterRun) -> str | None:
    """The specialist a run works on: its partition, else the `model_type` / `specialist` of its op config."""
    partition = run.tags.get("dagster/partition")
    if partition in SPECIALISTS:
        return partition
    for op in ((run.run_config or {}).get("ops") or {}).values():
        config = (op or {}).get("config") or {}
        for key in ("model_type", "specialist"):
            if config.get(key) in SPECIALISTS:
                return config[key]
    return None


def _seconds(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, timezone.utc) if value else None


def _facts(record) -> runs.RunFacts:
    run = record.dagster_run
    return runs.RunFacts(run.run_id, run.job_name, run.status.value, specialist_of(run),
                         _seconds(record.start_time) or _seconds(record.create_timestamp.timestamp()),
                         run.tags.get(runs.HOST_TAG), run.tags.get(runs.PID_TAG))


def experiment_id_of(client) -> str | None:
    experiment = client.get_experiment_by_name(Settings.from_env().mlflow_experiment_name)
    return experiment.experiment_id if experiment is not None else None


def find_orphans(instance: dg.DagsterInstance, store: DocumentStore, client=None, *,
                 specialist: str | None = None) -> runs.OrphanReport:
    """What a crash left behind (for one specialist, or all). `client` None: Dagster runs and leases only."""
    settings = Settings.from_env()
    now = clock.wall_now()
    max_runtime = timedelta(seconds=settings.retrain_max_runtime_seconds)
    ttl = timedelta(seconds=settings.lease_ttl_seconds)
    alive = [_facts(r) for r in instance.get_run_records(dg.RunsFilter(statuses=ALIVE))]
    if specialist is not None:
        alive = [r for r in alive if r.specialist == specialist]
    leases = list(store.find(runs.COLLECTION))
    if specialist is not None:
        leases = [d for d in leases if d.get("specialist_type") == specialist]
    report = runs.OrphanReport()
    report.dagster_runs = runs.orphan_runs(alive, leases, now, max_runtime, ttl)
    orphan_ids = {r["run_id"] for r in report.dagster_runs}
    owners: dict[str, runs.RunFacts] = {}
    for doc in leases:
        owner = str(doc.get("owner_run_id"))
        if doc.get("state") == runs.HELD and owner not in owners:
            record = instance.get_run_records(dg.RunsFilter(run_ids=[owner]), limit=1)
            if record:
                owners[owner] = _facts(record[0])
    report.stale_leases = runs.stale_leases(leases, owners, orphan_ids, now)
    if client is not None:
        report.mlflow_runs = _orphan_mlflow_runs(instance, client, specialist, orphan_ids, now, max_runtime)
    return report


def _orphan_mlflow_runs(instance: dg.DagsterInstance, client, specialist: str | None, orphan_ids: set[str],
                        now: datetime, max_runtime: timedelta) -> list[dict[str, Any]]:
    """RUNNING MLflow runs (of one specialist, or all) whose Dagster run is not alive (`runs.orphan_mlflow_runs`)."""
    experiment_id = experiment_id_of(client)
    if experiment_id is None:
        return []
    facts, statuses = [], {}
    for run in registry.running_runs(client, experiment_id):
        tags = run.data.tags
        dagster_id = tags.get("dagster.run_id")
        facts.append(runs.MlflowRunFacts(run.info.run_id, dagster_id, tags.get("dagster.partition"),
                                         _seconds((run.info.start_time or 0) / 1000)))
        if dagster_id and dagster_id not in statuses:
            found = instance.get_run_by_id(dagster_id)
            statuses[dagster_id] = found.status.value if found is not None else None
    if specialist is not None:
        facts = [f for f in facts if f.specialist == specialist]
    return runs.orphan_mlflow_runs(facts, statuses, orphan_ids, now, max_runtime)


def fix_orphans(instance: dg.DagsterInstance, store: DocumentStore, report: runs.OrphanReport, client=None, *,
                by: str = FAILED_BY, warn: Callable[[str], None] | None = None) -> list[str]:
    """Apply `report`: each orphaned Dagster run marked FAILURE (with the reason) and its leases released,
    its RUNNING MLflow runs (and the report's) ended FAILED, stale leases released. Returns what it did."""
    warn = warn or (lambda _message: None)
    done: list[str] = []
    mlflow_done: set[str] = set()
    experiment_id = None
    for orphan in report.dagster_runs:
        run = instance.get_run_by_id(orphan["run_id"])
        reason = f"marked failed by {by}: {orphan['reason']}"
        if run is not None and run.status in ALIVE:
            instance.report_run_failed(run, message=reason)
            done.append(f"dagster run {orphan['run_id']} marked FAILURE ({orphan['reason']})")
        for lease in orphan["leases"]:
            if _release(store, lease, reason):
                done.append(f"lease {lease['lease_id']} of run {orphan['run_id']} released")
        if client is not None:
            try:
                experiment_id = experiment_id or experiment_id_of(client)
                for mlflow_run in registry.running_runs(client, experiment_id, orphan["run_id"]) if experiment_id else []:
                    if registry.mark_run_failed(client, mlflow_run.info.run_id, reason):
                        mlflow_done.add(mlflow_run.info.run_id)
                        done.append(f"mlflow run {mlflow_run.info.run_id} ended FAILED (its Dagster run "
                                    f"{orphan['run_id']} is orphaned)")
            except Exception as exc:  # MLflow down: the Dagster side is fixed; the next check ends the MLflow run
                warn(f"could not end the MLflow runs of {orphan['run_id']}: {one_line(exc)}")
    for lease in report.stale_leases:
        if _release(store, lease, f"released by {by}: {lease['reason']}"):
            done.append(f"lease {lease['lease_id']} of run {lease['owner_run_id']} released ({lease['reason']})")
    for orphan in report.mlflow_runs:
        if client is None or orphan["run_id"] in mlflow_done:
            continue
        try:
            if registry.mark_run_failed(client, orphan["run_id"], f"marked failed by {by}: {orphan['reason']}"):
                done.append(f"mlflow run {orphan['run_id']} ended FAILED ({orphan['reason']})")
        except Exception as exc:  # refused (deleted meanwhile, no permission) or down: the others are still fixed
            warn(f"could not end mlflow run {orphan['run_id']}: {one_line(exc)}")
    return done


class HeldLease:
    """A lease this process holds (`holding`), with its heartbeat; `displaced`: the stale holder's document it
    took the lease from, if any; `release_reason`: what its release records (the holder may change it)."""

    def __init__(self, lease: runs.Lease, heartbeat: runs.Heartbeat, displaced: dict[str, Any] | None,
                 release_reason: str):
        self.lease, self.heartbeat, self.displaced = lease, heartbeat, displaced
        self.release_reason = release_reason


@contextmanager
def holding(kind: str, specialist: str, owner: str, *, job_name: str | None = None,
            on_wait: Callable[[dict[str, Any]], None] | None = None, on_lost: Callable[[str], None] | None = None,
            release_reason: str = "run ended") -> Iterator[HeldLease]:
    """The (kind, specialist) lease held by `owner` around the block, as a run (`lease.take`) and `hive doctor
    --fix` (`complete_intents`) hold it: acquired (waiting up to HIVE_LEASE_WAIT_SECONDS for a live holder,
    then `runs.LeaseHeld`), renewed by a heartbeat, released however the block ends (the heartbeat stopped
    first). A displaced stale holder (`held.displaced`) is the caller's to fail (`fail_displaced`)."""
    from hive_assets.data import open_store

    settings = Settings.from_env()
    with open_store() as store:
        lease, displaced = runs.acquire(store, kind, specialist, owner, ttl_seconds=settings.lease_ttl_seconds,
                                        wait_seconds=settings.lease_wait_seconds, job_name=job_name, on_wait=on_wait)
    held = HeldLease(lease, runs.Heartbeat(open_store, lease, on_lost=on_lost).start(), displaced, release_reason)
    try:
        yield held
    finally:
        held.heartbeat.stop()
        with open_store() as store:
            runs.release(store, lease, held.release_reason)


def fail_displaced(instance: dg.DagsterInstance, store: DocumentStore, displaced: dict[str, Any], *, by: str,
                   warn: Callable[[str], None] | None = None) -> list[str]:
    """Mark FAILURE the run whose stale lease an acquisition took over (`runs.acquire`'s displaced holder: it went
    stale after the orphan check). Returns what it did."""
    return fix_orphans(instance, store, runs.OrphanReport(dagster_runs=[{
        "run_id": displaced["owner_run_id"], "reason": displaced.get("stale_reason") or "lease stale",
        "leases": []}]), by=by, warn=warn)


def end_interrupted_mlflow_runs(instance: dg.DagsterInstance, store: DocumentStore, client, specialist: str, *,
                                by: str) -> list[str]:
    """The MLflow half of the run-start check, for a step that reaches MLflow anyway (training): RUNNING MLflow
    runs of `specialist` whose Dagster run ended (one that failed while MLflow was down could not end its own)
    are ended FAILED, so the next training completes what the failure interrupted, not `hive doctor --fix`.
    Only the MLflow half: the lease's check at the run's start has just looked at the Dagster runs and leases
    (an orphan it found is FAILURE by now, so its MLflow runs are found here as well)."""
    max_runtime = timedelta(seconds=Settings.from_env().retrain_max_runtime_seconds)
    found = _orphan_mlflow_runs(instance, client, specialist, set(), clock.wall_now(), max_runtime)
    return fix_orphans(instance, store, runs.OrphanReport(mlflow_runs=found), client, by=by)


def find_unfinished_intents(instance: dg.DagsterInstance, store: DocumentStore, *, specialist: str | None = None,
                            orphan_ids: set[str] = frozenset()) -> list[dict[str, Any]]:
    """Decisions a crash left `intended` (a promote, rollback or A/B outcome killed between two effects), for
    one specialist or all (`registry.interrupted_intents`); one whose Dagster run is alive, and not found
    orphaned, is that run's work in progress and left out."""
    found = registry.interrupted_intents(store, specialist)
    return _not_in_progress(instance, found, orphan_ids)


def _not_in_progress(instance: dg.DagsterInstance, found: list[dict[str, Any]],
                     orphan_ids: set[str]) -> list[dict[str, Any]]:
    """`found` but the items whose `dagster_run_id` is a run alive and not orphaned (it is doing that work)."""
    ids = sorted({f["dagster_run_id"] for f in found if f["dagster_run_id"]})
    running: set[str] = set()
    if ids:
        records = instance.get_run_records(dg.RunsFilter(run_ids=ids, statuses=ALIVE))
        running = {r.dagster_run.run_id for r in records} - set(orphan_ids)
    return [f for f in found if f["dagster_run_id"] not in running]


def find_out_of_step(store: DocumentStore, client, *, specialist: str | None = None) -> list[dict[str, Any]]:
    """A/B tests a crash left out of step with the registry (`rollout.out_of_step`), one {specialist, problem}
    each; none looked for without MLflow (`client` None: the doctor says MLflow was not checked)."""
    from hive_assets.rollout import out_of_step

    if client is None:
        return []
    enabled = Settings.from_env().ab_testing_enabled
    return [{"specialist": s, "problem": problem} for s in ([specialist] if specialist else SPECIALISTS)
            for problem in out_of_step(client, store, s, ab_testing_enabled=enabled)]


def find_unrecorded_registrations(instance: dg.DagsterInstance, store: DocumentStore, client, *,
                                  specialist: str | None = None,
                                  orphan_ids: set[str] = frozenset()) -> list[dict[str, Any]]:
    """Versions created without their registration row (`registry.unrecorded_registrations`), one dict each with
    its specialist; one whose registering Dagster run is alive, and not found orphaned, is that run's work in
    progress and left out. None looked for without MLflow."""
    if client is None:
        return []
    found = [{"specialist": s, **v} for s in ([specialist] if specialist else SPECIALISTS)
             for v in registry.unrecorded_registrations(client, store, s)]
    return _not_in_progress(instance, found, orphan_ids)


def record_registrations(store: DocumentStore, found: list[dict[str, Any]], *, by: str = FAILED_BY) -> list[str]:
    """The registration rows of the versions `found` (`registry.record_registration`); one line per row written."""
    return [f"registration of {f['specialist']} v{f['version']} recorded (no alias set: re-executing the run that "
            "registered it from its failure sets the one it would have set)"
            for f in found if registry.record_registration(store, f["specialist"], f, actor=by)]


def complete_intents(instance: dg.DagsterInstance, store: DocumentStore, found: list[dict[str, Any]], client, *,
                     by: str = FAILED_BY, out_of_step: list[dict[str, Any]] = ()) -> tuple[list[str], list[str]]:
    """Complete the specialists' unfinished decisions `found` names as every registry and A/B command does first
    (`rollout.complete_unfinished`: promotions and rollbacks by `registry.complete_intent`, A/B outcomes by the
    rollout; each applied with the actor and run that decided it, every write only when missing), then what the
    next A/B look would (`rollout.reconcile`: the tests `out_of_step` names, and a test whose champion a
    completed promotion just moved, stopped as the registry jobs stop it), holding the specialist's operator
    lease as they do, after the same clock check. Returns (what was completed, what was not and why)."""
    from hive_assets.rollout import reconcile

    owner = f"hive-doctor-{runs.this_host()}-{os.getpid()}"
    settings = Settings.from_env()
    done: list[str] = []
    left: list[str] = []
    for specialist in sorted({i["specialist"] for i in [*found, *out_of_step]}):
        pending = [i for i in found if i["specialist"] == specialist]
        stepping = [o for o in out_of_step if o["specialist"] == specialist]
        named = [f"{i['operation']} {i['target']} of {specialist} (intent {i['intent_id']})" for i in pending]
        named += [f"{o['problem']} ({specialist})" for o in stepping]
        if client is None:
            left += [f"{what}: MLflow does not answer" for what in named]
            continue
        with ExitStack() as holding_operator:
            try:  # the operator lease, held as the verbs and the A/B look hold it (`lease.take`)
                held = holding_operator.enter_context(holding(runs.OPERATOR, specialist, owner, job_name=by,
                                                              release_reason=f"{by}: done"))
            except runs.LeaseHeld as exc:  # a live operator verb or A/B look: it completes them first itself
                left += [f"{what}: {exc}" for what in named]
                continue
            try:
                if held.displaced is not None:  # went stale since the orphan check
                    done += fail_displaced(instance, store, held.displaced, by=by)
                registry.check_clock(store, specialist)
                effects = reconcile(client, store, specialist, clock.now(), actor=by,
                                    start_traffic=settings.ab_test_default_traffic,
                                    ab_testing_enabled=settings.ab_testing_enabled)
            except Exception as exc:  # refused (the clock set back) or MLflow failed midway: still intended, said so
                left += [f"{what}: {one_line(exc)}" for what in named]
                continue
        done += [f"{i['operation']} {i['target']} of {specialist} interrupted at {i['since']} completed (intent "
                 f"{i['intent_id']})" for i in pending if f"completed:{i['intent_id']}" in effects]
        rest = [e for e in effects if not e.startswith("completed:")]
        if rest:  # the A/B look's part: what it wrote, whether out_of_step named it or a completed promotion led to it
            done.append(f"A/B test records of {specialist} brought in line with the registry: {', '.join(rest)}")
    return done, left


def _release(store: DocumentStore, lease: dict[str, Any], reason: str) -> bool:
    current = store.find_one(runs.COLLECTION, {"lease_id": lease["lease_id"]})
    # only the holder the report saw, and only while it is still stale (a heartbeat since revives it)
    if current is None or current.get("token") != lease["token"] or current.get("state") != runs.HELD:
        return False
    if runs.stale_reason(current, clock.wall_now()) is None and current.get("owner_run_id") == lease["owner_run_id"]:
        run_ended = lease.get("reason", "").startswith("its run is")
        if not run_ended:
            return False
    return runs.release_stale(store, current, reason)


def one_line(exc: BaseException, limit: int = 300) -> str:
    from hive_assets.config import redact_secrets

    text = redact_secrets(" ".join(str(exc).split()) or type(exc).__name__)
    return text if len(text) <= limit else text[: limit - 3] + "..."
