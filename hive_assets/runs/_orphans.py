"""Which runs are orphans: a Dagster run STARTED whose process is gone, an MLflow run RUNNING without a
live Dagster run, a lease held for a run that ended. Pure decisions over plain facts; the wiring
(`hive_assets.defs.runs`) reads the Dagster instance and MLflow, and applies the verdicts.

The criterion for "the process is gone" is the lease (README "Runs, leases and orphans"): every
retraining and operator run holds one with a heartbeat, so a run whose lease went stale (expired, or on
this host a dead pid) is gone. A run without a lease is gone when the process that runs it, named by the
run's own tags (`hive/host`, `hive/pid`, written before its run-start check), no longer exists on this host
(it was killed before it took its lease, e.g. while waiting for another run's); else it is judged by age
alone: older than HIVE_RETRAIN_MAX_RUNTIME_SECONDS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hive_assets.data import to_utc
from hive_assets.runs._leases import HELD, RELEASED, process_gone, stale_reason

#: run tags naming the process that runs a run, written before it takes its lease (`hive_assets.defs.runs`)
HOST_TAG = "hive/host"
PID_TAG = "hive/pid"


@dataclass(frozen=True)
class RunFacts:
    """What the orphan check needs of a Dagster run (read from the instance by the wiring)."""

    run_id: str
    job_name: str
    status: str            # DagsterRunStatus value: STARTED, STARTING, SUCCESS, ...
    specialist: str | None
    started_at: datetime | None
    host: str | None = None  # its HOST_TAG / PID_TAG: the process that runs it, once it reached its start check
    pid: str | None = None


@dataclass(frozen=True)
class MlflowRunFacts:
    run_id: str
    dagster_run_id: str | None
    specialist: str | None
    started_at: datetime | None


@dataclass
class OrphanReport:
    """What `hive doctor` prints and, with --fix, acts on."""

    dagster_runs: list[dict[str, Any]] = field(default_factory=list)   # {run_id, job, specialist, reason, leases}
    mlflow_runs: list[dict[str, Any]] = field(default_factory=list)    # {run_id, dagster_run_id, specialist, reason}
    stale_leases: list[dict[str, Any]] = field(default_factory=list)   # {lease_id, owner_run_id, reason}

    @property
    def empty(self) -> bool:
        return not (self.dagster_runs or self.mlflow_runs or self.stale_leases)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ALIVE_STATUSES = ("STARTING", "STARTED", "CANCELING")
WAITING_STATUSES = ("QUEUED", "NOT_STARTED")


def _lease_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k) for k in ("lease_id", "token", "kind", "specialist_type", "owner_run_id", "host", "pid",
                                    "state")}


def orphan_runs(runs: list[RunFacts], leases: list[dict[str, Any]], now: datetime, max_runtime: timedelta,
                ttl: timedelta, host: str | None = None) -> list[dict[str, Any]]:
    """The STARTING/STARTED runs whose process is gone, each with the reason and its held leases.

    A run with held leases is gone when every one of them is stale. A run whose lease was released more than a
    TTL ago and which still has not ended is gone (it died between its teardown and its final event). A
    run with no lease at all is gone when its process, on this host, is (it died before taking its lease:
    in its start check, or waiting for a live holder), else only when it is older than `max_runtime`.
    """
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for doc in leases:
        by_owner.setdefault(str(doc.get("owner_run_id")), []).append(doc)
    out = []
    for run in runs:
        if run.status not in ALIVE_STATUSES:
            continue
        own = by_owner.get(run.run_id, [])
        held = [d for d in own if d.get("state") == HELD]
        reason = None
        if held:
            # gone when every lease it holds is stale: a training run holds the operator lease too around its
            # decisions, and one resumed in a new pod after dying there heartbeats its training lease again
            # while the operator lease of the dead pod is stale (`stale_leases` releases that one)
            reasons = [r for r in (stale_reason(d, now, host) for d in held) if r]
            reason = reasons[0] if len(reasons) == len(held) else None
        elif own:
            released = max((to_utc(d.get("released_at")) for d in own if d.get("state") == RELEASED
                            and d.get("released_at") is not None), default=None)
            if released is not None and now - released > ttl:
                reason = f"released its lease at {released.isoformat(timespec='seconds')} but never ended"
        elif gone := process_gone(run.host, run.pid, host):
            reason = f"{gone}, and it held no lease (killed before it took one)"
        elif run.started_at is not None and now - run.started_at > max_runtime:
            reason = (f"no lease and running for {(now - run.started_at).total_seconds() / 3600:.1f} h, longer than "
                      f"HIVE_RETRAIN_MAX_RUNTIME_SECONDS ({max_runtime.total_seconds():.0f} s)")
        if reason:
            out.append({"run_id": run.run_id, "job": run.job_name, "specialist": run.specialist, "status": run.status,
                        "started_at": run.started_at.isoformat() if run.started_at else None, "reason": reason,
                        "leases": [_lease_view(d) for d in held]})
    return out


def stale_leases(leases: list[dict[str, Any]], runs_by_id: dict[str, RunFacts], orphan_ids: set[str],
                 now: datetime, host: str | None = None) -> list[dict[str, Any]]:
    """Held leases whose holder is gone and that no orphaned run above accounts for (e.g. the run was
    already marked failed elsewhere, or never reached the instance)."""
    out = []
    for doc in leases:
        if doc.get("state") != HELD or doc.get("owner_run_id") in orphan_ids:
            continue
        run = runs_by_id.get(str(doc.get("owner_run_id")))
        reason = stale_reason(doc, now, host)
        if reason is None and run is not None and run.status not in ALIVE_STATUSES + WAITING_STATUSES:
            reason = f"its run is {run.status}"
        if reason:
            out.append({**_lease_view(doc), "reason": reason})
    return out


def orphan_mlflow_runs(runs: list[MlflowRunFacts], dagster_status: dict[str, str | None], orphan_ids: set[str],
                       now: datetime, max_runtime: timedelta) -> list[dict[str, Any]]:
    """MLflow runs still RUNNING whose Dagster run is not alive: ended (any final status), found orphaned
    above, or unknown to this instance and older than `max_runtime` (another instance may own a young one)."""
    out = []
    for run in runs:
        if not run.dagster_run_id:
            continue  # not a run this platform started
        status = dagster_status.get(run.dagster_run_id)
        if run.dagster_run_id in orphan_ids:
            reason = f"its Dagster run {run.dagster_run_id} is orphaned"
        elif status is None:
            if run.started_at is None or now - run.started_at <= max_runtime:
                continue
            reason = f"its Dagster run {run.dagster_run_id} is not in this instance and it is older than the runtime limit"
        elif status in ALIVE_STATUSES + WAITING_STATUSES:
            continue
        else:
            reason = f"its Dagster run {run.dagster_run_id} is {status}"
        out.append({"run_id": run.run_id, "dagster_run_id": run.dagster_run_id, "specialist": run.specialist,
                    "reason": reason})
    return out
