"""ab_test_outcome: the state of the champion/challenger test for each specialist.

It depends on `registered_model_version` for ordering only (`deps`, no input): what it acts on is the
registry's aliases (the truth) and the `ab_tests` record, so the hourly job `ab_test_check`, which
selects this asset alone, never needs the upstream value from the IO manager.
"""

from datetime import datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from hive_assets import clock as platform_clock
from hive_assets import registry
from hive_assets.defs import _ui
from hive_assets.defs.catalog import OWNERS, ROLLOUT
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.registry.assets import registered_model_version
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.defs.runs.lease import RUN_LEASE, RunLeaseResource
from hive_assets.defs.runs.run_config import step_config
from hive_assets.figures import png_markdown
from hive_assets.rollout import (
    CheckResult, LookBeforeLastLook, challenger_to_open, check_test, complete_unfinished, policy_from_env,
    settle_closed, start_test, trajectory_png,
)


class RolloutClockConfig(dg.Config):
    now: str = Field("", description="ISO-8601 instant to act at (the injectable clock, for simulation and "
                                     "replays), not after the platform clock; empty means the platform clock "
                                     "(the home's, `hive clock`)")


@step_config("ab_test_outcome")
class AbTestOutcomeConfig(RolloutClockConfig):
    test_id: str = Field("", description="when set, fail unless this is the specialist's running test")
    label_maturity_hours: float | None = Field(
        None, gt=0, description="feedback window per unit (default AB_TEST_LABEL_MATURITY_HOURS, else 48)")
    max_duration_days: float | None = Field(
        None, gt=0,
        description="end a test without a verdict after this long (default AB_TEST_MAX_DURATION_DAYS, else 14)")


def clock(config: RolloutClockConfig) -> datetime:
    """The instant to act at: the platform clock, or `now` for a replay, which may not be after the platform
    clock (a look "next year" ended tests at their maximum duration while the ledger stamped them today)."""
    current = platform_clock.now()
    if not config.now:
        return current
    try:
        at = platform_clock.parse_instant(config.now)
    except ValueError:
        raise dg.Failure(f"now={config.now!r} is not an ISO-8601 instant (e.g. 2026-03-02T09:00:00Z)",
                         allow_retries=False) from None
    if at > current + registry.CLOCK_SKEW:
        raise dg.Failure(f"now={at.isoformat()} is after the platform clock ({current.isoformat()}): a decision "
                         "cannot be taken at a time that has not come; move the home's clock (`hive clock "
                         "advance`) instead", allow_retries=False)
    return at


def actor_of(context) -> str:
    return context.run.tags.get("hive/actor") or f"dagster:{context.run_id}"


def outcome_output(result: CheckResult) -> dg.Output[dict[str, Any]]:
    """The asset value and its metadata: status, traffic, verdict, per-arm numbers, the interval, and the
    `trajectory` chart (traffic steps, the difference's always-valid interval at each look)."""
    summary = result.summary()
    metadata: dict[str, Any] = {"status": summary["status"], "test_id": summary.get("test_id") or ""}
    if summary["test_id"]:
        metadata.update(traffic_percent=float(summary["traffic_percent"]), verdict=summary["verdict"],
                        days_elapsed=float(summary.get("days_elapsed") or 0.0))
        for arm in (registry.CHAMPION, registry.CHALLENGER):
            counts = summary.get(arm) or {}
            for key in ("agreement", "mean_confidence", "label_coverage"):
                if counts.get(key) is not None:
                    metadata[f"{arm}_{key}"] = float(counts[key])
            for key in ("served", "labelled", "invalid_confidence"):
                metadata[f"{arm}_{key}"] = int(counts.get(key) or 0)
        if summary.get("interval"):
            lower, upper = summary["interval"]
            metadata["difference"] = float(summary["difference"])
            metadata["interval"] = f"[{lower:+.4f}, {upper:+.4f}] (always-valid)"
        if summary.get("reason"):
            metadata["reason"] = summary["reason"]
        if summary.get("end_reason"):
            metadata["end_reason"] = summary["end_reason"]
        if result.effects:
            metadata["effects"] = dg.MetadataValue.json(result.effects)
        metadata["trajectory"] = dg.MetadataValue.md(png_markdown(
            trajectory_png(result.test), f"{summary['test_id']}: challenger traffic and agreement difference",
            note=f"{len(result.test.get('checks') or [])} looks, {len(result.test.get('traffic_history') or [])} "
                 "traffic steps (ab_tests document)"))
    return dg.Output(summary, metadata=_ui.for_display(metadata))


@dg.asset(
    partitions_def=specialist_partitions,
    group_name=ROLLOUT,
    kinds={"mlflow", "mongodb"},
    owners=OWNERS,
    deps=[registered_model_version],
    resource_defs={"run_lease": RUN_LEASE},  # the partition's one-writer lease, held for the whole run
)
def ab_test_outcome(context: dg.AssetExecutionContext, config: AbTestOutcomeConfig, mlflow: MlflowResource,
                    document_store: DocumentStoreResource, platform: PlatformSettings,
                    run_lease: RunLeaseResource) -> dg.Output[dict[str, Any]]:
    """State of the champion/challenger test for this specialist: opens one at AB_TEST_DEFAULT_TRAFFIC when
    a challenger is registered, and re-evaluates a running one (SPEC section 7) at the configured `now`."""
    specialist = context.partition_key
    now = clock(config)
    actor = actor_of(context)
    mlflow.require_reachable(context)  # before the operator lease and the test's records and aliases
    client = mlflow.client()
    policy = policy_from_env(start_traffic=platform.ab_test_default_traffic,
                             label_maturity=_hours(config.label_maturity_hours),
                             max_duration=_days(config.max_duration_days))
    # the operator lease too (a whole-graph run holds the training lease): an operator verb must not interleave
    with document_store.outage_retried(context), run_lease.deciding(context):
        with document_store.open() as store:  # inside the outage guard above
            # unfinished decisions first (a crash between an outcome's writes), then closed tests: a rollback
            # interrupted before its alias removal must not reopen a test
            for line in complete_unfinished(client, store, specialist, actor=actor, dagster_run_id=context.run_id):
                context.log.info(f"{specialist}: {line}")
            settle_closed(client, store, specialist, actor=actor, dagster_run_id=context.run_id)
            if platform.ab_testing_enabled and (pair := challenger_to_open(client, store, specialist)):
                start_test(client, store, specialist, *pair, policy.start_traffic, now, actor=actor,
                           dagster_run_id=context.run_id)
            try:
                result = check_test(client, store, specialist, now, policy, actor=actor, dagster_run_id=context.run_id)
            except LookBeforeLastLook as exc:  # the clock was pinned back: retrying at the same time cannot help
                raise dg.Failure(str(exc), allow_retries=False) from None
    if config.test_id and (result.test is None or result.test["test_id"] != config.test_id):
        raise dg.Failure(f"{specialist}: test {config.test_id} is not the specialist's current test "
                         f"({result.test['test_id'] if result.test else 'none'})", allow_retries=False)
    context.log.info(f"{specialist}: {result.summary()['status']} {result.summary().get('verdict', '')}"
                     + (f" ({result.decision.reason})" if result.decision else ""))
    return outcome_output(result)


def _hours(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(hours=value)


def _days(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(days=value)
