"""Refusals at a run's setup that no retry of the run changes: a setting, a bucket, run config out of range, a
lease another run holds. Raised while resources are set up, before any step, Dagster records them as a run
exception, which the deployment's run retries (deploy/dagster.yaml `run_retries`, `retry_on_asset_or_op_failure:
false` spares only step failures) started again in a new pod, to be refused the same way in one more run."""

from __future__ import annotations

import dagster as dg

# Dagster's run tag for the run's own retry limit (dagster._core.storage.tags.MAX_RETRIES_TAG); it reads the run's
# tags again when the run fails, so a tag set before the refusal is raised decides `dagster/will_retry`
MAX_RETRIES_TAG = "dagster/max_retries"
# why this run's limit is 0: a re-execution copies the run's tags, this one included, and gets the limit back
# when its own setup passes (`retries_restored`)
SETUP_REFUSED_TAG = "hive/setup_refused"


def not_retried(context: dg.InitResourceContext) -> None:
    """Set the run's retry limit to 0 (shown with its tags in the UI) before a setup refusal is raised."""
    run, instance = getattr(context, "dagster_run", None), getattr(context, "instance", None)
    if run is not None and instance is not None:
        instance.add_run_tags(run.run_id, {MAX_RETRIES_TAG: "0", SETUP_REFUSED_TAG: "true"})


def retries_restored(context: dg.InitResourceContext) -> None:
    """A setup that passed, in a re-execution of a refused run (its tags copied): the instance's retry limit
    back, so a worker that dies in this run is retried as any other's."""
    run, instance = getattr(context, "dagster_run", None), getattr(context, "instance", None)
    if run is not None and instance is not None and run.tags.get(SETUP_REFUSED_TAG) == "true":
        instance.add_run_tags(run.run_id, {MAX_RETRIES_TAG: str(instance.run_retries_max_retries),
                                           SETUP_REFUSED_TAG: "false"})
