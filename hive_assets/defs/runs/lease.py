"""The run lease as Dagster wiring: one writer per (job kind, specialist), whatever launched the run.

* Asset runs (a sensor's `retrain_specialist`, `dagster asset materialize`, `hive train`, `hive collect`,
  `hive drift check`, the UI, `hive loop`): every asset of the graph carries `RUN_LEASE` bound as its
  `run_lease` resource, so the run's worker takes the lease once, before its first step, and gives it
  up after its last one, on success and on failure (resource setup and teardown are run-scoped with the
  in-process executor). A run whose selection is `ab_test_outcome` alone (the hourly `ab_test_check`)
  takes the operator lease; one of `review_queue` alone (the daily `refresh_review_queue`) the review
  lease, so it neither waits for a retraining nor spends the day's budget twice; any other the training
  lease of its partition (a whole-graph run refreshes the queue under it).
* Operator jobs (promote, rollback, alias, register, A/B start/expand/stop) are one op each: the op takes
  the operator lease of its specialist around its work (`operator_lease`).
* A training run's registry decisions (registration's alias, the A/B test opened or judged) take the
  operator lease as well, around those writes only (`RunLeaseResource.deciding`): aliases have one writer
  at a time, and an operator verb waits seconds, never a training.

Before taking a lease, the run tags itself with its host and pid (`name_process`: a run killed before it
holds a lease is then found dead by its pid, as a holder is), checks its specialist for orphans
(`doctor.find_orphans`: a run whose leases all went stale, or with none whose process is gone, is marked
FAILURE, its lease released, its MLflow runs ended FAILED), then acquires, waiting up to
HIVE_LEASE_WAIT_SECONDS for a live holder; after that it fails with "another run of <specialist> holds it
(run ...)". A heartbeat thread renews the lease every third of HIVE_LEASE_TTL_SECONDS, and through a store
outage for as long as it lasts; `check()` renews a lease a TTL overdue before the run writes as its holder.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from hive_assets import runs
from hive_assets.config import SPECIALISTS, Settings
from hive_assets.data import StoreUnavailable, open_store
from hive_assets.defs.runs.doctor import HeldLease, fail_displaced, find_orphans, fix_orphans, holding, one_line
from hive_assets.defs.runs.refusals import not_retried, retries_restored
from hive_assets.defs.runs.run_config import out_of_bounds
from hive_assets.reachability import registry_down

# the job of `dg.materialize` and an asset's `execute_in_process` (dagster._core.definitions.materialize)
EPHEMERAL_JOB_NAME = "__ephemeral_asset_job__"

# An asset's own `resource_defs` is beta in Dagster 1.13 (it warns at each decoration) yet the way to bind one
# resource to every asset of the graph without each caller's resource dict having to name it.
warnings.filterwarnings("ignore", message="Parameter `resource_defs` of function `asset`", category=dg.BetaWarning)

#: (kind, jobs, assets): an asset run of one of these jobs, or whose selection is within these assets,
#: takes that kind's lease (A/B looks: operator; review-queue refreshes: review); any other, training
LEASE_KIND_OF_RUN = (
    (runs.OPERATOR, frozenset({"ab_test_check"}), frozenset({"ab_test_outcome"})),
    (runs.REVIEW, frozenset({"refresh_review_queue"}), frozenset({"review_queue"})),
)


def lease_target(run: dg.DagsterRun, instance: dg.DagsterInstance | None = None) -> tuple[str, str] | None:
    """(kind, specialist) of an asset run's lease, or None for a run with no specialist partition. With the
    `instance`, a run of an ephemeral job (`dg.materialize`, `execute_in_process` of a few assets: no asset
    selection) is judged by its steps, its assets: `dg.materialize([review_queue])` took the training lease, so
    it ran beside a sensor's refresh (the daily budget then read twice) and waited for a retraining."""
    specialist = run.tags.get("dagster/partition")
    if specialist not in SPECIALISTS:
        return None
    selection = {key.to_user_string() for key in run.asset_selection or ()}
    snapshot = run.execution_plan_snapshot_id
    if not selection and run.job_name == EPHEMERAL_JOB_NAME and instance is not None and snapshot:
        selection = {step.key for step in instance.get_execution_plan_snapshot(snapshot).steps}
    for kind, jobs, assets in LEASE_KIND_OF_RUN:
        if run.job_name in jobs or (selection and selection <= assets):
            return kind, specialist
    return runs.TRAINING, specialist


class LeaseLost(dg.Failure):
    """The run's lease was taken over (its heartbeat stopped for a TTL): it must not write as the holder."""


class _Holder:
    """A lease this process holds (`holding`, entered in `take`), with its heartbeat, until `end`."""

    def __init__(self, held: HeldLease, held_until_end: ExitStack, log):
        self.lease, self.heartbeat = held.lease, held.heartbeat
        self._held, self._holding, self._log = held, held_until_end, log

    def end(self, reason: str) -> None:
        self._held.release_reason = reason
        try:
            self._holding.close()  # the heartbeat stopped, the lease released
        except StoreUnavailable as exc:
            # a second traceback would hide the step's own error; a lease left held expires, and the next
            # run-start check of its specialist releases it sooner (its run has ended)
            self._log.warning(f"{self.lease.describe()} not released ({reason}): {one_line(exc)}; it expires in "
                              f"{self.lease.ttl_seconds:g} s or is released by the next run's start check")


def _mlflow_client():
    from hive_assets.registry import client_for

    return client_for(Settings.from_env().mlflow_uri)


def name_process(instance: dg.DagsterInstance, run_id: str) -> None:
    """Tag the run with the host and pid of the process that runs it (`runs.HOST_TAG`, `runs.PID_TAG`), before
    its start check and the wait for its lease: a run killed there holds no lease, and without them it counted
    as in flight (the retraining triggers' guard, the run queue's slot) until HIVE_RETRAIN_MAX_RUNTIME_SECONDS."""
    tags = {runs.HOST_TAG: runs.this_host(), runs.PID_TAG: str(os.getpid())}
    try:
        instance.add_run_tags(run_id, tags)
    except dg.DagsterRunNotFoundError:  # an id the instance does not hold (a test's): no run to mark dead
        return


def take(instance: dg.DagsterInstance, run_id: str, job_name: str, kind: str, specialist: str, log) -> _Holder:
    """The run-start check for `specialist`, then the lease (waiting up to the setting), with its heartbeat."""
    settings = Settings.from_env()
    name_process(instance, run_id)
    with open_store() as store:
        report = find_orphans(instance, store, specialist=specialist)
        # a run that run monitoring resumed in a new pod (same run id) finds its own lease stale: it is that
        # lease's holder again, not an orphan to mark failed (which failed the resumed run and let a retry in)
        report.dagster_runs = [orphan for orphan in report.dagster_runs if orphan["run_id"] != run_id]
        report.stale_leases = [lease for lease in report.stale_leases if lease.get("owner_run_id") != run_id]
        if not report.empty:
            client = None
            # asked first: MLflow's client retries each request for minutes before fix_orphans gives up on it
            if report.dagster_runs and (down := registry_down(settings.mlflow_uri)):
                log.warning(f"MLflow unreachable for the run-start check: {down}")
            elif report.dagster_runs:
                try:
                    client = _mlflow_client()
                except Exception as exc:  # the Dagster side is fixed anyway; `hive doctor` ends the MLflow runs
                    log.warning(f"MLflow unreachable for the run-start check: {one_line(exc)}")
            for line in fix_orphans(instance, store, report, client, by=f"the start of run {run_id}",
                                    warn=log.warning):
                log.warning(f"run-start check: {line}")
    with ExitStack() as until_end:  # held past this call (`_Holder.end`), released here only if this fails
        held = until_end.enter_context(holding(
            kind, specialist, run_id, job_name=job_name, on_lost=log.error,
            on_wait=lambda holder: log.info(
                f"waiting up to {settings.lease_wait_seconds} s for run {holder.get('owner_run_id')}, which holds "
                f"the {kind} lease of {specialist}")))
        if held.displaced is not None:  # went stale between the check and the acquisition
            with open_store() as store:
                fail_displaced(instance, store, held.displaced, by=f"the start of run {run_id}", warn=log.warning)
        log.info(f"{held.lease.describe()} taken (ttl {settings.lease_ttl_seconds} s)")
        return _Holder(held, until_end.pop_all(), log)


class RunLeaseResource(dg.ConfigurableResource):
    """The run's lease of its (job kind, specialist): taken when the run's resources are set up, released
    at teardown. Reads the document store from the environment (MONGODB_URI or the SQLite store under
    HIVE_HOME), so it has no configuration to show. Assets call `check()` before writing as the holder."""

    _holder: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.dagster_run
        if run is not None and (problems := out_of_bounds(run.run_config)):
            # before the first step writes: each step judges only its own config, when it starts
            not_retried(context)
            raise dg.Failure(description=f"run config out of range: {'; '.join(problems)}; nothing was written",
                             allow_retries=False)
        retries_restored(context)
        target = lease_target(run, context.instance) if run is not None else None
        if target is None or context.instance is None:
            return  # direct invocation in a test, or a run with no specialist: nothing to guard
        kind, specialist = target
        try:
            self._holder = take(context.instance, run.run_id, run.job_name, kind, specialist, context.log)
        except runs.LeaseHeld as exc:  # a retry at once would meet the same holder: the sensor asks again later
            not_retried(context)
            raise dg.Failure(description=str(exc), allow_retries=False) from None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._holder is not None:
            self._holder.end("run ended")
            self._holder = None

    @contextmanager
    def deciding(self, context: dg.AssetExecutionContext) -> Iterator[None]:
        """Around a run's registry decisions (a registration's alias, an A/B test opened or judged): the
        operator lease of its specialist too, unless the run's own lease is it. The operator verbs take that
        lease, so a promotion or rollback never interleaves with a training run's alias moves (each would
        act on aliases the other is changing); they wait for these seconds, never for the training."""
        # the run's own lease says which it holds (None: invoked directly in a test, or no specialist)
        own = self._holder.lease if self._holder is not None else None
        if own is None or own.kind == runs.OPERATOR:
            yield
            return
        self.check()
        run, specialist = context.dagster_run, own.specialist
        try:
            holder = take(context.instance, run.run_id, run.job_name, runs.OPERATOR, specialist, context.log)
        except runs.LeaseHeld as exc:  # an operator verb takes seconds: the step's retry policy tries again
            raise dg.Failure(description=str(exc), allow_retries=True) from None
        try:
            yield
        except BaseException:
            try:  # the decisions' own error is what to say: a lease left held goes stale and is released
                holder.end("decisions failed")
            except Exception as exc:
                context.log.warning(f"the operator lease of {specialist} was not released: {one_line(exc)}")
            raise
        holder.end("decisions written")

    def check(self) -> None:
        """Raise LeaseLost when the lease this run took was lost (a run that lost it must not write as
        the partition's one writer). A lease whose heartbeat could not renew it for a TTL (the store was down)
        is renewed here first: still this run's, the run goes on; taken over meanwhile, it is lost."""
        if self._holder is None:
            return
        heartbeat = self._holder.heartbeat
        if heartbeat.overdue:
            heartbeat.confirm()  # a lost lease's confirm changes nothing
        if heartbeat.lost:
            raise LeaseLost(description=heartbeat.lost, allow_retries=False)


#: one instance, bound to every asset of the graph (assets bind it: a key the definitions' resources and the
#: tests' own resource dicts need not provide)
RUN_LEASE = RunLeaseResource()


@contextmanager
def operator_lease(context: dg.OpExecutionContext, specialist: str) -> Iterator[runs.Lease]:
    """The operator lease of `specialist` around an operator op (the op is the whole run)."""
    try:
        holder = take(context.instance, context.run_id, context.job_name, runs.OPERATOR, specialist, context.log)
    except runs.LeaseHeld as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    try:
        yield holder.lease
    finally:
        holder.end("run ended")
