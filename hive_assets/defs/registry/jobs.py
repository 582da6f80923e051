"""Registry operations as Dagster jobs (SPEC sections 1, 6, 10): register, promote, rollback, alias, list.

One op per job, with typed, described config, so each runs from the UI Launchpad, a sensor or the shell
(`hive deploy ...`) and leaves a run record with its config and outcome. The ops only read resources and
config, call `hive_assets.registry`, and turn the result into output metadata; a refused operation
(`RegistryError`, raised before any write) fails the run with its message and is not retried.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from hive_assets import clock, registry
from hive_assets.config import SPECIALISTS
from hive_assets.defs.catalog import Specialist
from hive_assets.defs.k8s import SHORT_JOB_RUN_TAGS
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource
from hive_assets.defs.runs.lease import operator_lease
from hive_assets.rollout import complete_unfinished, settle_closed, stop_if_arms_changed

ACTOR_TAG = "hive/actor"
SPECIALIST_HELP = f"the specialist whose `<specialist>-evaluator` model this acts on: one of {', '.join(SPECIALISTS)}"


def actor_of(context: dg.OpExecutionContext) -> str:
    """Who launched the run: the `hive/actor` tag (the CLI sets `user:<login>`), else the sensor or
    schedule that launched it, else a person in the UI."""
    tags = context.run.tags
    if tags.get(ACTOR_TAG):
        return tags[ACTOR_TAG]
    if tags.get("dagster/sensor_name"):
        return f"sensor:{tags['dagster/sensor_name']}"
    if tags.get("dagster/schedule_name"):
        return f"schedule:{tags['dagster/schedule_name']}"
    return f"user:{tags.get('user', 'dagster-ui')}"


class RegisterVersionConfig(dg.Config):
    specialist: Specialist = Field(description=SPECIALIST_HELP)
    run_id: str = Field(description="the MLflow run whose logged model becomes a version (twice -> one version)")
    reason: str = Field(default="", description="why, for the ledger")


class PromoteConfig(dg.Config):
    specialist: Specialist = Field(description=SPECIALIST_HELP)
    model_version: str = Field(description="version to make champion: N, <model>/N or models:/<model>/N")
    force: bool = Field(default=False, description="promote even though the validation gate did not pass")
    reason: str = Field(default="", description="why, for the ledger (required with force)")


class RollbackConfig(dg.Config):
    """Which champion to move back, and to what; the defaults restore the previous champion from the ledger."""

    specialist: Specialist = Field(description=SPECIALIST_HELP)
    target_version: str = Field(default="", description="version to restore; empty: the previous champion "
                                                        "known from the ledger")
    force: bool = Field(default=False, description="allow a target that never held champion and whose gate "
                                                   "did not pass")
    reason: str = Field(default="", description="why, for the ledger")
    idempotency_key: str = Field(default="", description="a name for this rollback: a rerun with the same key is a "
                                                         "no-op that says so (empty: a rerun is recognised by the "
                                                         "ledger, see README)")


class AliasConfig(dg.Config):
    specialist: Specialist = Field(description=SPECIALIST_HELP)
    alias: str = Field(description="alias to point: champion (same rules as promote), challenger, ab-test-v<N>, ...")
    model_version: str = Field(description="version the alias points at")
    force: bool = Field(default=False, description="for champion: as promote's force")
    reason: str = Field(default="", description="why, for the ledger")


class ListConfig(dg.Config):
    specialist: Specialist = Field(description=SPECIALIST_HELP)


def _call(context, config, mlflow: MlflowResource, document_store: DocumentStoreResource, action, *,
          writes: bool = True, **kwargs):
    """Run a registry operation for the configured specialist. One that writes holds the specialist's
    operator lease and first completes any unfinished decision a crash left (README "Fault matrix")."""
    mlflow.require_reachable(context)  # before the lease and any completion or write
    if not writes:
        with document_store.opened_in_step(context) as store:
            return _refusing(lambda: action(client=mlflow.client(), store=store, specialist=config.specialist,
                                            **kwargs))
    with document_store.opened_in_step(context) as store, operator_lease(context, config.specialist):
        client = mlflow.client()
        _refusing(lambda: registry.check_clock(store, config.specialist))
        completed = complete_unfinished(client, store, config.specialist, actor=actor_of(context),
                                        dagster_run_id=context.run_id)
        # a test stop cut short (closed, its challenger alias not yet removed): settled before the move, or
        # the settle after it undid an alias this operation had just set
        completed += settle_closed(client, store, config.specialist, actor=actor_of(context),
                                   dagster_run_id=context.run_id)
        for line in completed:
            context.log.info(f"{config.specialist}: {line}")
        result = _refusing(lambda: action(client=client, store=store, specialist=config.specialist, **kwargs))
        # a champion moved under a running A/B test ends that test now, not at its next look: until then
        # serving would split traffic between the new champion and a challenger compared with the old one
        stopped, effects = stop_if_arms_changed(client, store, config.specialist, clock.now(),
                                                actor=actor_of(context), dagster_run_id=context.run_id)
        result = _completed_here(store, completed, result)
        if stopped is not None:
            context.log.info(f"{config.specialist}: A/B test {stopped['test_id']} stopped: {stopped['end_reason']} "
                             f"({', '.join(effects)})")
            result = {**result, "ab_test_stopped": stopped["test_id"], "ab_test_stop_reason": stopped["end_reason"]}
        return result


def _completed_here(store, completed: list[str], result: dict[str, Any]) -> dict[str, Any]:
    """A rerun of an interrupted rollback or promotion finds it already complete, because this run completed it
    just before the action: that is the rerun's work, reported as such (with when it was interrupted), not as
    "already done" or "already in place" (a rollback's or a promotion's no-op; a promotion that moved and
    wrote nothing)."""
    if not isinstance(result, dict):
        return result
    if result.get("noop"):  # an operation already done: completed here if it was interrupted
        operation = result.get("operation", registry.ROLLBACK_INTENT)
    elif result.get("alias") == registry.CHAMPION and not (result.get("moved") or result.get("recorded")):
        operation = registry.PROMOTE_INTENT
    else:
        return result
    for line in reversed(completed):
        intent = registry.get_intent(store, line.removeprefix("completed:")) if line.startswith("completed:") else None
        if (intent and intent["operation"] == operation and intent["state"] == registry.DONE
                and str(intent["params"]["version"]) == str(result.get("version"))):
            return {**intent["result"], "resumed": True, "interrupted_at": registry.intent_recorded_at(intent)}
    return result


def _refusing(call):
    try:
        return call()
    except registry.RegistryError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


def _describe(context: dg.OpExecutionContext, result: dict[str, Any]) -> dict[str, Any]:
    context.add_output_metadata({k: (v if isinstance(v, (str, int, float, bool)) else str(v))
                                 for k, v in result.items() if v is not None})
    context.log.info(str(result))
    return result


@dg.op(description="Register an MLflow run's model as a version (idempotent).")
def register_version_op(context: dg.OpExecutionContext, config: RegisterVersionConfig, mlflow: MlflowResource,
                        document_store: DocumentStoreResource) -> dict:
    return _describe(context, _call(context, config, mlflow, document_store, registry.register,
                                    run_id=config.run_id, actor=actor_of(context),
                                    reason=config.reason or "registered by an operator",
                                    dagster_run_id=context.run_id))


@dg.op(description="Move `champion` to a version whose gate passed (or forced with a reason).")
def promote_op(context: dg.OpExecutionContext, config: PromoteConfig, mlflow: MlflowResource,
               document_store: DocumentStoreResource) -> dict:
    return _describe(context, _call(context, config, mlflow, document_store, registry.promote,
                                    version_ref=config.model_version, actor=actor_of(context), reason=config.reason,
                                    force=config.force, dagster_run_id=context.run_id))


@dg.op(description="Move `champion` back to the previous champion (from the ledger) or to a given version.")
def rollback_op(context: dg.OpExecutionContext, config: RollbackConfig, mlflow: MlflowResource,
                document_store: DocumentStoreResource) -> dict:
    return _describe(context, _call(context, config, mlflow, document_store, registry.rollback,
                                    target_version=config.target_version or None, actor=actor_of(context),
                                    reason=config.reason, force=config.force, dagster_run_id=context.run_id,
                                    idempotency_key=config.idempotency_key or None))


@dg.op(description="Point an alias at a version.")
def alias_op(context: dg.OpExecutionContext, config: AliasConfig, mlflow: MlflowResource,
             document_store: DocumentStoreResource) -> dict:
    return _describe(context, _call(context, config, mlflow, document_store, registry.set_alias,
                                    alias=config.alias, version_ref=config.model_version, actor=actor_of(context),
                                    reason=config.reason, force=config.force, dagster_run_id=context.run_id))


@dg.op(description="Every version of the specialist's model: aliases, stage, gate, run.")
def list_op(context: dg.OpExecutionContext, config: ListConfig, mlflow: MlflowResource,
            document_store: DocumentStoreResource) -> list:
    versions = _call(context, config, mlflow, document_store, registry.list_versions, writes=False)
    header = "| version | aliases | stage | gate | macro-F1 | run |\n|---|---|---|---|---|---|\n"
    rows = "".join(f"| {v['version']} | {', '.join(v['aliases'])} | {v['stage']} | {v['gate']} | "
                   f"{'' if v['macro_f1'] is None else format(v['macro_f1'], '.4f')} | {v['run_id']} |\n"
                   for v in versions)
    context.add_output_metadata({"versions": len(versions), "table": dg.MetadataValue.md(header + rows)})
    return versions


@dg.job(tags=SHORT_JOB_RUN_TAGS,
        description="Register an MLflow training run's model in `<specialist>-evaluator` (hive deploy register).")
def register_model_version():
    register_version_op()


@dg.job(tags=SHORT_JOB_RUN_TAGS,
        description="Promote a version to champion (hive deploy promote).")
def promote_model_version():
    promote_op()


@dg.job(tags=SHORT_JOB_RUN_TAGS,
        description="Roll champion back (hive deploy rollback).")
def rollback_champion():
    rollback_op()


@dg.job(tags=SHORT_JOB_RUN_TAGS,
        description="Point an alias at a version (hive deploy alias).")
def set_model_alias():
    alias_op()


@dg.job(tags=SHORT_JOB_RUN_TAGS,
        description="List a specialist's model versions (hive deploy list).")
def list_model_versions():
    list_op()


REGISTRY_JOBS = [register_model_version, promote_model_version, rollback_champion, set_model_alias,
                 list_model_versions]
