"""A/B jobs: the hourly check, and the operator's start / expand / stop (UI Launchpad, sensors, `hive ab-test`).

The operator ops report an `ab_test_outcome` materialization for the specialist, so the asset always
shows the test's latest state whoever changed it.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from hive_assets import registry
from hive_assets.config import SPECIALISTS
from hive_assets.defs.catalog import Specialist
from hive_assets.defs.k8s import SHORT_JOB_RUN_TAGS
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.registry.assets import refuse_if_clock_behind
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.defs.rollout.assets import RolloutClockConfig, ab_test_outcome, actor_of, clock
from hive_assets.defs.runs.lease import operator_lease
from hive_assets.rollout import (
    STOPPED, CheckResult, close_test, complete_unfinished, opening_instant, opening_traffic_refusal, running_test,
    set_traffic, settle, settle_closed, start_test, stop_if_arms_changed,
)

ab_test_check = dg.define_asset_job(
    "ab_test_check",
    selection=[ab_test_outcome],
    partitions_def=specialist_partitions,
    # a small pod, and never behind a training run: no `hive/retrain` tag (deploy/helm/values.yaml)
    tags=SHORT_JOB_RUN_TAGS,
    description="Re-evaluate the specialist's running A/B test (requested hourly by ab_test_check_sensor).",
)


SPECIALIST_HELP = f"the specialist whose A/B test this acts on: one of {', '.join(SPECIALISTS)}"


class _OperatorConfig(RolloutClockConfig):
    specialist: Specialist = Field(description=SPECIALIST_HELP)
    test_id: str = Field("", description="when set, act only if this is the specialist's running test")


class StartTestConfig(RolloutClockConfig):
    specialist: Specialist = Field(description=SPECIALIST_HELP)
    new_version: str = Field(description="registry version to test (it becomes the challenger)")
    baseline_version: str = Field("", description="the champion it is tested against; must be the current "
                                                  "champion (empty: the current champion)")
    traffic: float | None = Field(None, description="challenger share in % (default AB_TEST_DEFAULT_TRAFFIC)")
    force: bool = Field(False, description="test it even though its validation gate did not pass (it serves "
                                           "production traffic)")
    reason: str = Field("", description="why, for the ledger (required with force)")


class ExpandTrafficConfig(_OperatorConfig):
    traffic: float = Field(description="new challenger share in %, above the current one (routing is monotone)")


class StopTestConfig(_OperatorConfig):
    reason: str = Field("stopped by an operator", description="why, for the ledger")


def _running(store, config: _OperatorConfig) -> dict[str, Any]:
    test = running_test(store, config.specialist)
    if test is None:
        raise dg.Failure(f"{config.specialist}: no running A/B test", allow_retries=False)
    if config.test_id and test["test_id"] != config.test_id:
        raise dg.Failure(f"{config.specialist}: the running test is {test['test_id']}, not {config.test_id}",
                         allow_retries=False)
    return test


def _stopped_already(store, config: StopTestConfig) -> dict[str, Any] | None:
    """Without a running test, the specialist's latest test when it is stopped (and is `test_id` when given):
    a stop repeated, or retried after it closed the test, has nothing left to do."""
    if running_test(store, config.specialist) is not None:
        return None
    latest = store.find_one("ab_tests", {"specialist_type": config.specialist}, sort=[("started_at", -1)])
    if latest is None or latest["status"] != STOPPED or (config.test_id and latest["test_id"] != config.test_id):
        return None
    return latest


def _report(context: dg.OpExecutionContext, specialist: str, result: CheckResult) -> dict[str, Any]:
    from hive_assets.defs.rollout.assets import outcome_output

    output = outcome_output(result)
    context.log_event(dg.AssetMaterialization(asset_key=ab_test_outcome.key, partition=specialist,
                                              metadata=output.metadata))
    return output.value


@dg.op(description="Open an A/B test of a registered version against the champion.")
def start_ab_test(context: dg.OpExecutionContext, config: StartTestConfig, mlflow: MlflowResource,
                  document_store: DocumentStoreResource, platform: PlatformSettings) -> dict[str, Any]:
    mlflow.require_reachable(context)  # before the lease and the test's records and aliases
    client, actor, now = mlflow.client(), actor_of(context), clock(config)
    name = registry.model_name(config.specialist)
    for ref in filter(None, (config.new_version, config.baseline_version)):  # the Launchpad's, as the CLI's
        try:
            registry.parse_version_ref(ref)
        except registry.RegistryError as exc:  # 99999999999 reached MLflow's store: an OverflowError
            raise dg.Failure(str(exc), allow_retries=False) from None
    version = registry.model_version(client, config.specialist, config.new_version)
    if version is None:
        raise dg.Failure(f"{name} has no version {config.new_version}", allow_retries=False)
    champion = registry.alias_version(client, config.specialist, registry.CHAMPION)
    if champion is None:
        raise dg.Failure(f"{name} has no champion to test against", allow_retries=False)
    if config.baseline_version and str(champion.version) != config.baseline_version:
        raise dg.Failure(f"{name}: the champion is v{champion.version}, not v{config.baseline_version}",
                         allow_retries=False)
    if str(champion.version) == config.new_version:
        raise dg.Failure(f"{name}: v{config.new_version} is the champion already", allow_retries=False)
    # a challenger serves production traffic: promote's gate rule
    with document_store.opened_in_step(context) as store:
        try:
            gate, _ = registry.check_gate(store, config.specialist, version, config.force, config.reason)
        except registry.RegistryError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None
    traffic = platform.ab_test_default_traffic if config.traffic is None else config.traffic
    if refusal := opening_traffic_refusal(traffic):
        raise dg.Failure(refusal, allow_retries=False)
    with document_store.opened_in_step(context) as store, operator_lease(context, config.specialist):
        refuse_if_clock_behind(store, config.specialist)
        try:
            now = opening_instant(store, config.specialist, now)
        except ValueError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None
        complete_unfinished(client, store, config.specialist, actor=actor, dagster_run_id=context.run_id)
        # a stop cut short (its test closed, its challenger alias not yet removed): settled before the alias is
        # read, or the new test of the same version kept it, and the old test's settle removed it after
        settle_closed(client, store, config.specialist, actor=actor, dagster_run_id=context.run_id)
        stop_if_arms_changed(client, store, config.specialist, now, actor=actor, dagster_run_id=context.run_id)
        _refuse_another_start(store, name, config)
        holder = registry.alias_version(client, config.specialist, registry.CHALLENGER)
        if holder is None or str(holder.version) != config.new_version:
            why = "A/B test started by an operator" + (f" (gate {gate}, forced: {config.reason})" if gate != "passed"
                                                        else "")
            registry.ensure_alias(client, store, config.specialist, registry.CHALLENGER, config.new_version,
                                actor=actor, reason=why, dagster_run_id=context.run_id)
        test, created, effects = start_test(client, store, config.specialist, str(champion.version),
                                            config.new_version, traffic, now, actor=actor,
                                            dagster_run_id=context.run_id)
    context.log.info(f"{test['test_id']}: {'opened' if created else 'already running'} at "
                     f"{float(test['traffic_percent']):g} %")
    return _report(context, config.specialist, CheckResult(test, None, [], effects))


def _refuse_another_start(store, name: str, config: StartTestConfig) -> None:
    """A start while a test runs: of another version, it closed that test as "superseded" by a registration
    that never happened, at its last share, and said nothing of it; of the same version at another share, it
    said "running" at the old share. Both are refused with what to run instead; the same start again (a retry,
    the share not given or the same) finds its test and completes what it left."""
    running = running_test(store, config.specialist)
    if running is None:
        return
    at = f"{float(running['traffic_percent']):g} %"
    if str(running["challenger_version"]) != config.new_version:
        raise dg.Failure(f"{name}: A/B test {running['test_id']} of v{running['challenger_version']} is running at "
                         f"{at}; stop it first (hive ab-test stop --specialist {config.specialist} --reason ...), "
                         f"then start v{config.new_version}; nothing was changed", allow_retries=False)
    if config.traffic is not None and float(config.traffic) != float(running["traffic_percent"]):
        raise dg.Failure(f"{name}: A/B test {running['test_id']} of v{config.new_version} is running already, at "
                         f"{at}, not {float(config.traffic):g} %: hive ab-test expand raises its share (a share "
                         "is never lowered; stop the test to start over); nothing was changed", allow_retries=False)


@dg.op(description="Raise the challenger's traffic share of the running A/B test.")
def expand_ab_test(context: dg.OpExecutionContext, config: ExpandTrafficConfig, mlflow: MlflowResource,
                   document_store: DocumentStoreResource) -> dict[str, Any]:
    mlflow.require_reachable(context)  # before the lease and the test's records and aliases
    client, actor, now = mlflow.client(), actor_of(context), clock(config)
    with document_store.opened_in_step(context) as store, operator_lease(context, config.specialist):
        refuse_if_clock_behind(store, config.specialist)
        complete_unfinished(client, store, config.specialist, actor=actor, dagster_run_id=context.run_id)
        stop_if_arms_changed(client, store, config.specialist, now, actor=actor, dagster_run_id=context.run_id)
        test = _running(store, config)
        if float(test["traffic_percent"]) == float(config.traffic):
            # the same expand again, or the retry of one cut short after its traffic step: settle below
            # completes what it left (the split's tags, the ledger row); failing here left serving at the old share
            context.log.info(f"{test['test_id']}: already at {float(config.traffic):g} %")
        else:
            try:
                test = set_traffic(store, test, config.traffic, now, f"expanded by {actor}", actor)
            except ValueError as exc:
                raise dg.Failure(str(exc), allow_retries=False) from None
        effects = settle(client, store, test, actor=actor, dagster_run_id=context.run_id)
    return _report(context, config.specialist, CheckResult(test, None, [], effects))


@dg.op(description="Stop the running A/B test: traffic 0, challenger alias removed, champion kept.")
def stop_ab_test(context: dg.OpExecutionContext, config: StopTestConfig, mlflow: MlflowResource,
                 document_store: DocumentStoreResource) -> dict[str, Any]:
    mlflow.require_reachable(context)  # before the lease and the test's records and aliases
    client, actor, now = mlflow.client(), actor_of(context), clock(config)
    with document_store.opened_in_step(context) as store, operator_lease(context, config.specialist):
        refuse_if_clock_behind(store, config.specialist)
        complete_unfinished(client, store, config.specialist, actor=actor, dagster_run_id=context.run_id)
        # a stop cut short after the test closed (MLflow down): its alias removal and tags, completed here; the
        # retry failed with "no running A/B test" while serving still routed to the challenger
        effects = settle_closed(client, store, config.specialist, actor=actor, dagster_run_id=context.run_id)
        if (stopped := _stopped_already(store, config)) is not None:
            context.log.info(f"{stopped['test_id']}: already stopped ({stopped.get('end_reason')})")
            return _report(context, config.specialist, CheckResult(stopped, None, [], effects))
        try:
            test = close_test(store, _running(store, config), STOPPED, now, config.reason)
        except ValueError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None
        effects += settle(client, store, test, actor=actor, dagster_run_id=context.run_id)
    return _report(context, config.specialist, CheckResult(test, None, [], effects))


@dg.job(tags=SHORT_JOB_RUN_TAGS,
        description="Open an A/B test: the version becomes challenger, traffic starts at the given share.")
def ab_test_start():
    start_ab_test()


@dg.job(tags=SHORT_JOB_RUN_TAGS,
        description="Expand the running A/B test's challenger traffic (monotone).")
def ab_test_expand():
    expand_ab_test()


@dg.job(tags=SHORT_JOB_RUN_TAGS,
        description="Stop the running A/B test; the champion stays.")
def ab_test_stop():
    stop_ab_test()
